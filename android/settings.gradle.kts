// WeldGuard's Android build: the JVM module with the idiomatic layer and view models (tested on the
// JVM by scripts/kotlin-tests.sh), the Android library (the core's .so per ABI, Keystore, CameraX,
// WorkManager) and the Compose app. See README.md.

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "weldguard-android"

include(":weldguard-kotlin")
include(":weldguard-android")
include(":app")
