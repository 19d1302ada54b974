// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "samtrain",
    products: [
        .executable(name: "samtrain", targets: ["samtrain"]),
        .library(name: "SAMTrain", targets: ["SAMTrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found with pkg-config. Each header also holds tiny static
        // inline shims for what Swift cannot import (Open MPI's handle macros).
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // SHA-256 of the files a run starts from (OpenSSL's libcrypto).
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // samtrain's own convolution kernels (AVX2 + FMA, chosen at run time).
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        .target(
            name: "SAMTrain",
            dependencies: ["CMPI", "CBLAS", "CZlib", "CCrypto", "CKernels",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "samtrain",
            dependencies: [
                "SAMTrain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "SAMTrainTests",
            dependencies: ["SAMTrain", "samtrain"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
