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
        // dev.pith:pith, installed by `mvn -f bindings/kotlin/pom.xml install`.
        mavenLocal()
    }
}

rootProject.name = "pith-example"
include(":app")
