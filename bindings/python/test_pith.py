"""The Python package on the real models: ingest, sync, search, streamed ask,
cancellation and errors. scripts/test-bindings runs it against the wheel (scripts/wheel)
installed into a fresh virtual environment, with PITH_MODELS and PITH_DOCUMENTS set."""

import os
import shutil
import threading

import pytest

import pith

BEES = (
    "Honeybees live in colonies of up to sixty thousand workers. The queen lays up to "
    "two thousand eggs a day. Worker bees communicate the direction of flowers through the "
    "waggle dance. Drones do not sting, and their only task is to mate with a queen."
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    db = tmp_path_factory.mktemp("pith") / "test.db"
    config = pith.EngineConfig(
        models_dir=os.environ["PITH_MODELS"],
        db_path=str(db),
        device=pith.Device.CPU,
        precision=pith.Precision.Q,
    )
    return pith.Engine.open(config)


@pytest.fixture(scope="module")
def bees(engine):
    class Progress(pith.ProgressListener):
        def __init__(self):
            self.calls = []

        def on_progress(self, done, total):
            self.calls.append((done, total))

    progress = Progress()
    result = engine.ingest_text("bees", BEES, '{"topic": "bees"}', progress)
    assert not result.duplicate and result.passages > 0
    assert progress.calls[-1] == (result.passages, result.passages)
    return result.document_id


def test_ingest_deduplicates_and_lists(engine, bees, tmp_path):
    assert engine.ingest_text("again", BEES, None, None).duplicate
    path = tmp_path / "bread.md"
    path.write_text("# Sourdough\n\nA sourdough starter is flour and water fermented by wild yeast.\n")
    engine.ingest_file(str(path), None, None)
    docs = engine.documents()
    assert [d.source for d in docs][:1] == ["bees"]
    assert str(path) in [d.source for d in docs]
    assert "topic" in docs[0].metadata_json


def test_search_every_method(engine, bees):
    for method in (pith.SearchMethod.HYBRID, pith.SearchMethod.VECTOR, pith.SearchMethod.BM25):
        hits = engine.search("How many eggs does the queen lay?", 2, method)
        assert hits[0].source == "bees" and "eggs" in hits[0].text
        assert hits[0].end_char > hits[0].start_char


def test_streamed_ask_with_citations(engine, bees):
    class Stream(pith.AnswerListener):
        def __init__(self):
            self.pieces = []

        def on_text(self, text):
            self.pieces.append(text)

    stream = Stream()
    config = pith.AskConfig(k=2, max_tokens=24)
    answer = engine.ask("How many eggs does the queen lay a day?", config, stream, None)
    assert stream.pieces and "".join(stream.pieces).strip() == answer.text
    assert answer.citations and answer.citations[0].document_id == bees
    assert answer.stats.context_tokens_after <= answer.stats.context_tokens_before
    assert answer.stats.first_token_ms > 0
    assert answer.attributions
    for a in answer.attributions:
        assert 0 <= a.start_char < a.end_char <= len(answer.text)
        for s in a.supports:
            c = answer.citations[s.citation_index]
            assert c.start_char <= s.start_char < s.end_char <= c.end_char
            assert s.text and 0 < s.score <= 1
    assert not answer.abstained and answer.grounding >= config.abstain_below


def test_chat_carries_the_subject_into_a_follow_up(engine, bees):
    conversation = pith.Conversation()
    config = pith.AskConfig(k=1, max_tokens=8)
    engine.chat(conversation, "What does a honeybee queen do?", config, None, None)
    answer = engine.chat(conversation, "How many eggs does she lay a day?", config, None, None)
    turns = conversation.turns()
    assert [t.question for t in turns] == ["What does a honeybee queen do?", "How many eggs does she lay a day?"]
    assert "queen" in turns[1].standalone and turns[1].answer == answer.text
    assert answer.citations and answer.citations[0].document_id == bees
    # The first turn's passage again: its cache is reused.
    assert 0 < answer.stats.context_tokens_reused <= answer.stats.context_tokens_before
    conversation.reset()
    assert conversation.turns() == []


def test_ask_abstains_off_topic(engine, bees):
    config = pith.AskConfig(k=2, max_tokens=8)
    answer = engine.ask("Who won the 1998 FIFA World Cup?", config, None, None)
    assert answer.abstained and answer.grounding < config.abstain_below
    assert "do not contain" in answer.text and not answer.citations
    config.abstain_below = -1.0
    answer = engine.ask("Who won the 1998 FIFA World Cup?", config, None, None)
    assert not answer.abstained and answer.stats.generated_tokens > 0


def test_cancel_from_another_thread(engine, bees):
    cancel = pith.CancelHandle()

    class Canceller(pith.AnswerListener):
        def on_text(self, text):
            t = threading.Thread(target=cancel.cancel)
            t.start()
            t.join()

    with pytest.raises(pith.PithError.Cancelled):
        # Never abstaining, so that there is an answer to stop.
        config = pith.AskConfig(k=2, max_tokens=200, abstain_below=-1.0)
        engine.ask("What is the waggle dance?", config, Canceller(), cancel)
    assert cancel.is_cancelled()


def test_errors_are_exceptions_with_messages(engine, tmp_path):
    with pytest.raises(pith.PithError.InvalidArgument, match="JSON object"):
        engine.ingest_text("x", "some text", "[1]", None)
    with pytest.raises(pith.PithError.InvalidArgument):
        engine.search("   ", 3, pith.SearchMethod.HYBRID)
    with pytest.raises(pith.PithError.Io):
        engine.ingest_file(str(tmp_path / "missing.txt"), None, None)
    with pytest.raises(pith.PithError.NotFound):
        engine.delete_document(987654)
    with pytest.raises(pith.PithError.Io):
        pith.Engine.open(pith.EngineConfig(models_dir=str(tmp_path / "none"), db_path=str(tmp_path / "x.db")))


class IngestRecorder(pith.IngestListener):
    """Keeps what ingest_files reports; cancels after the first batch when given a handle."""

    def __init__(self, cancel=None):
        self.progress, self.outcomes, self.cancel = [], [], cancel

    def on_progress(self, progress):
        self.progress.append(progress)
        if self.cancel is not None and progress.passages_done > 0:
            self.cancel.cancel()
        return True

    def on_document(self, outcome):
        self.outcomes.append(outcome)


def test_ingest_files_cancels_and_resumes(tmp_path):
    paths = []
    for d in range(20):
        text = " ".join(f"On day {k} of log {d} the keeper counted {k * d + 3} ships by the reef."
                        for k in range(40))
        path = tmp_path / f"log-{d:02}.txt"
        path.write_text(text)
        paths.append(str(path))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"PK\x03\x04\x00\x00")
    paths.append(str(binary))
    engine = pith.Engine.open(pith.EngineConfig(
        models_dir=os.environ["PITH_MODELS"], db_path=str(tmp_path / "files.db"),
        device=pith.Device.CPU))

    cancel = pith.CancelHandle()
    first = IngestRecorder(cancel)
    with pytest.raises(pith.PithError.Cancelled):
        engine.ingest_files(paths, None, first, cancel)
    stored = len(engine.documents())
    assert stored < 20 and len(first.outcomes) >= stored

    rest = IngestRecorder()
    summary = engine.ingest_files(paths, '{"kind": "log"}', rest, None)
    assert (summary.added, summary.duplicates, summary.failed) == (20 - stored, stored, 1)
    assert len(rest.outcomes) == 21 and len(engine.documents()) == 20
    failed = [o for o in rest.outcomes if o.error is not None]
    assert [o.path for o in failed] == [str(binary)] and "binary" in failed[0].error
    assert failed[0].result is None
    last = rest.progress[-1]
    assert last.documents_done == 21 and last.bytes_done == last.bytes_total
    assert last.eta_s == 0.0 and last.passages_per_s > 0


def test_sync_follows_the_folder_and_pdf_hits_cite_pages(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    pdf = folder / "aardvark.pdf"
    shutil.copy(os.path.join(os.environ["PITH_DOCUMENTS"], "aardvark.pdf"), pdf)
    note = folder / "note.md"
    note.write_text("# Zebras\n\nZebras have black and white stripes.\n")
    engine = pith.Engine.open(pith.EngineConfig(
        models_dir=os.environ["PITH_MODELS"], db_path=str(tmp_path / "sync.db"),
        device=pith.Device.CPU))

    report = engine.sync([str(folder)], None, None, None)
    assert sorted(report.added) == [str(pdf), str(note)] and report.passages > 0
    hits = engine.search("What does the aardvark eat?", 3, pith.SearchMethod.HYBRID)
    assert hits[0].source == str(pdf) and hits[0].page >= 1 and hits[0].heading
    zebra = engine.search("stripes", 1, pith.SearchMethod.BM25)[0]
    assert zebra.page is None and zebra.heading == "Zebras"

    assert engine.sync([str(folder)], None, None, None).unchanged == 2
    note.write_text("# Zebras\n\nZebras live in herds on the savanna.\n")
    pdf.unlink()
    report = engine.sync([str(folder)], None, None, None)
    assert (report.updated, report.removed, report.added) == ([str(note)], [str(pdf)], [])
    assert [d.source for d in engine.documents()] == [str(note)]
    with pytest.raises(pith.PithError.Io):
        engine.sync([str(tmp_path / "missing")], None, None, None)
