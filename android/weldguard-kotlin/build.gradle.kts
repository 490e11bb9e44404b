// weldguard-kotlin: plain Kotlin/JVM. The UniFFI bindings (package org.weldguard.core) are
// generated at build time from the host-built core library (never committed), with the
// workspace's uniffi-bindgen and uniffi.toml (android = false: the JVM's cleaner); the idiomatic
// layer and the view models (org.weldguard.app) build on them with no Android import. The tests
// run on the JVM against the host library; here they run through scripts/kotlin-tests.sh, which
// `cargo xtask test` calls (no Gradle on the CI machine, docs/adr/0013).

plugins {
    alias(libs.plugins.kotlin.jvm)
}

val rustWorkspace: File by rootProject.extra
val cargo = providers.environmentVariable("CARGO").orElse("cargo")
val cargoTarget: File = providers.environmentVariable("CARGO_TARGET_DIR").map { File(it) }
    .getOrElse(rustWorkspace.resolve("target"))
val hostLibrary: File = cargoTarget.resolve("debug/" + System.mapLibraryName("weldguard_ffi"))
val generatedBindings = layout.buildDirectory.dir("generated/uniffi/kotlin")

/** The core for this machine: the library JNA loads in the tests and the bindings' source. */
val cargoBuildHost by tasks.registering(Exec::class) {
    group = "rust"
    description = "cargo build -p weldguard-ffi --lib (the host library)"
    workingDir = rustWorkspace
    commandLine(cargo.get(), "build", "-p", "weldguard-ffi", "--lib")
    inputs.dir(rustWorkspace.resolve("ffi/src"))
    inputs.dir(rustWorkspace.resolve("core/src"))
    inputs.dir(rustWorkspace.resolve("model/src"))
    outputs.file(hostLibrary)
}

/** org/weldguard/core/weldguard_core.kt from the host library (library mode). */
val generateBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generate the Kotlin bindings (JVM: android = false)"
    dependsOn(cargoBuildHost)
    workingDir = rustWorkspace
    val out = generatedBindings.get().asFile
    inputs.file(hostLibrary)
    inputs.file(rustWorkspace.resolve("uniffi.toml"))
    outputs.dir(out)
    doFirst { out.deleteRecursively() }
    commandLine(
        cargo.get(), "run", "--quiet", "-p", "uniffi-bindgen", "--", "generate",
        "--library", hostLibrary.path, "-l", "kotlin", "--no-format",
        "--config", rustWorkspace.resolve("uniffi.toml").path, "--out-dir", out.path,
    )
}

kotlin {
    jvmToolchain(17)
    sourceSets["main"].kotlin.srcDir(generatedBindings)
}

tasks.named("compileKotlin") { dependsOn(generateBindings) }

dependencies {
    api(libs.jna)
    api(libs.kotlinx.coroutines.core)
    testImplementation(libs.kotlin.test.junit5)
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
}

tasks.test {
    useJUnitPlatform()
    dependsOn(cargoBuildHost)
    // The same properties scripts/kotlin-tests.sh passes. The flow tests need the server, the CLI
    // and wg-shell-world built: cargo build -p weldguard-server -p weldguard-cli -p weldguard-tests.
    systemProperty("jna.library.path", hostLibrary.parentFile.path)
    systemProperty("weldguard.fixtures", file("src/test/resources/fixtures").path)
    systemProperty("weldguard.bin", cargoTarget.resolve("debug").path)
}
