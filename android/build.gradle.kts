// Plugins are declared here once (versions in gradle/libs.versions.toml) and applied per module.

plugins {
    alias(libs.plugins.kotlin.jvm) apply false
    alias(libs.plugins.kotlin.android) apply false
    alias(libs.plugins.kotlin.compose) apply false
    alias(libs.plugins.android.library) apply false
    alias(libs.plugins.android.application) apply false
}

/** The Rust workspace this Android build sits in (android/ is one of its directories). */
extra["rustWorkspace"] = rootDir.parentFile

allprojects {
    group = "org.weldguard"
    version = "0.1.0"
}
