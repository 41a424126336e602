import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

android {
    namespace = "dev.pith.example"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.pith.example"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // The ABIs build-native.sh builds libpith_uniffi.so for.
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures { compose = true }

    // The model weights hardly compress; stored as they are, the first-run copy out of
    // the APK does not have to inflate 190 MB.
    androidResources { noCompress += listOf("gguf", "safetensors") }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    implementation(platform("androidx.compose:compose-bom:2024.12.01"))
    implementation("androidx.compose.ui:ui")
    implementation("androidx.compose.material3:material3")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.lifecycle:lifecycle-viewmodel-compose:2.8.7")
    // The bindings: the same jar the JVM tests run against (`mvn install` of
    // bindings/kotlin, scripts/test-bindings), from the local Maven repository. Its
    // desktop JNA and linux-x86-64 library are not for Android: JNA comes as the AAR below,
    // libpith_uniffi.so per ABI from build-native.sh (jniLibs).
    implementation("dev.pith:pith:0.2.0") {
        exclude(group = "net.java.dev.jna", module = "jna")
    }
    // The AAR carries JNA's own native library for each Android ABI.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
