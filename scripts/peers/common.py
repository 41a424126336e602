"""What the peer scripts share."""


def peak_rss_mib():
    """The process's resident-set high-water mark (VmHWM), as pith reports its own."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def percentile(xs, p):
    """Nearest-rank percentile, the same definition as pith's."""
    import math

    v = sorted(xs)
    rank = math.ceil(p / 100 * len(v))
    return v[min(max(rank, 1), len(v)) - 1]
