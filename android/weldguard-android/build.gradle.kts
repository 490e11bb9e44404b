// weldguard-android: the Android library an app adds. It holds
// - the core's .so for arm64-v8a, armeabi-v7a and x86_64, built by cargo-ndk from a Gradle task;
// - the UniFFI bindings generated for Android (uniffi-android.toml: android = true);
// - the idiomatic layer and view models, compiled from weldguard-kotlin's sources (one copy of the
//   code; the JVM module keeps the JVM bindings and JNA's jar, this one JNA's aar);
// - the Android parts: the Keystore key, the CameraX analyzer, the deadline notifications.
// Written for Android Studio; not built on the project's CI machine (no Android SDK there).

plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

val rustWorkspace: File by rootProject.extra
val cargo = providers.environmentVariable("CARGO").orElse("cargo")
val cargoTarget: File = providers.environmentVariable("CARGO_TARGET_DIR").map { File(it) }
    .getOrElse(rustWorkspace.resolve("target"))
val hostLibrary: File = cargoTarget.resolve("debug/" + System.mapLibraryName("weldguard_ffi"))
val jniLibsOut = layout.buildDirectory.dir("rust/jniLibs")
val androidBindings = layout.buildDirectory.dir("generated/uniffi/android")
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

/** libweldguard_ffi.so per ABI, optimised, into build/rust/jniLibs/ABI/. Needs cargo-ndk
 * (`cargo install cargo-ndk`), the Rust targets (`rustup target add aarch64-linux-android
 * armv7-linux-androideabi x86_64-linux-android`) and the NDK (ANDROID_NDK_HOME, or the SDK's). */
val cargoNdk by tasks.registering(Exec::class) {
    group = "rust"
    description = "cargo ndk build --release -p weldguard-ffi for ${abis.joinToString()}"
    workingDir = rustWorkspace
    val out = jniLibsOut.get().asFile
    inputs.dir(rustWorkspace.resolve("ffi/src"))
    inputs.dir(rustWorkspace.resolve("core/src"))
    inputs.dir(rustWorkspace.resolve("model/src"))
    outputs.dir(out)
    commandLine(
        listOf(cargo.get(), "ndk") + abis.flatMap { listOf("-t", it) } +
            listOf("--platform", "26", "-o", out.path, "build", "--release", "-p", "weldguard-ffi", "--lib"),
    )
}

/** The host library: the bindings are read from its metadata (the same on every target). */
val cargoBuildHost by tasks.registering(Exec::class) {
    group = "rust"
    workingDir = rustWorkspace
    commandLine(cargo.get(), "build", "-p", "weldguard-ffi", "--lib")
    outputs.file(hostLibrary)
}

val generateAndroidBindings by tasks.registering(Exec::class) {
    group = "rust"
    description = "Generate the Kotlin bindings for Android (android = true)"
    dependsOn(cargoBuildHost)
    workingDir = rustWorkspace
    val out = androidBindings.get().asFile
    inputs.file(hostLibrary)
    inputs.file(file("uniffi-android.toml"))
    outputs.dir(out)
    doFirst { out.deleteRecursively() }
    commandLine(
        cargo.get(), "run", "--quiet", "-p", "uniffi-bindgen", "--", "generate",
        "--library", hostLibrary.path, "-l", "kotlin", "--no-format",
        "--config", file("uniffi-android.toml").path, "--out-dir", out.path,
    )
}

android {
    namespace = "org.weldguard.android"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }
    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }
    sourceSets["main"].apply {
        jniLibs.srcDir(jniLibsOut)
        kotlin.srcDir(androidBindings)
        kotlin.srcDir(project(":weldguard-kotlin").file("src/main/kotlin"))
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

tasks.named("preBuild") { dependsOn(cargoNdk, generateAndroidBindings) }

dependencies {
    api("net.java.dev.jna:jna:${libs.versions.jna.get()}@aar")
    api(libs.kotlinx.coroutines.android)
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.biometric)
    implementation(libs.androidx.camera.core)
    implementation(libs.androidx.work.runtime)
}
