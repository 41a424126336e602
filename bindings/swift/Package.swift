// swift-tools-version:5.9
// pith for Swift: the uniffi-generated `Pith` module over the Rust static library in
// PithFFI.xcframework, which build-xcframework.sh makes (it is not committed).
import PackageDescription

let package = Package(
    name: "Pith",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Pith", targets: ["Pith"]),
    ],
    targets: [
        .binaryTarget(name: "PithFFI", path: "PithFFI.xcframework"),
        .target(
            name: "Pith",
            dependencies: ["PithFFI"],
            path: "Sources/Pith",
            // A Rust static library does not carry its crates' framework links into the
            // app's link, so they are named here: wgpu's Metal backend (Metal, QuartzCore,
            // CoreGraphics, IOSurface, Foundation via objc2) and sysinfo (IOKit, CoreFoundation).
            linkerSettings: [
                .linkedFramework("Metal"),
                .linkedFramework("QuartzCore"),
                .linkedFramework("CoreGraphics"),
                .linkedFramework("IOSurface"),
                .linkedFramework("Foundation"),
                .linkedFramework("CoreFoundation"),
                .linkedFramework("IOKit"),
            ]
        ),
    ]
)
