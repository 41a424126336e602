package dev.pith

import java.io.File
import java.nio.file.Files
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.MethodOrderer
import org.junit.jupiter.api.Order
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.TestMethodOrder
import org.junit.jupiter.api.assertThrows

const val BEES = "Honeybees live in colonies of up to sixty thousand workers. The queen lays up to " +
    "two thousand eggs a day. Worker bees communicate the direction of flowers through the " +
    "waggle dance. Drones do not sting, and their only task is to mate with a queen."

/** One engine, on the real models and a real database, shared by the tests in order. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation::class)
class PithTest {
    private val models = System.getProperty("pith.models")
    private val dir = Files.createTempDirectory("pith-kotlin").toFile()
    private lateinit var engine: Engine
    private var bees = 0L

    @BeforeAll
    fun open() {
        engine = Engine.open(EngineConfig(modelsDir = models, dbPath = File(dir, "test.db").path, device = Device.CPU))
    }

    @Test
    @Order(0)
    fun `the library is the bindings' release, and another release is refused by name`() {
        checkLibraryVersion(version())
        val refused = assertThrows<UnsatisfiedLinkError> { checkLibraryVersion("0.0.0") }
        assertTrue(refused.message!!.contains("the native library (libpith_uniffi.so) is version 0.0.0"))
    }

    @AfterAll
    fun close() {
        engine.destroy()
        dir.deleteRecursively()
    }

    @Test
    @Order(1)
    fun ingestReportsProgressAndDeduplicates() {
        val progress = CopyOnWriteArrayList<Pair<ULong, ULong>>()
        val listener = object : ProgressListener {
            override fun onProgress(done: ULong, total: ULong) { progress.add(done to total) }
        }
        val first = engine.ingestText("bees", BEES, """{"topic": "bees"}""", listener)
        assertFalse(first.duplicate)
        assertTrue(first.passages > 0u)
        assertEquals(first.passages, progress.last().first)
        bees = first.documentId
        assertTrue(engine.ingestText("again", BEES, null, null).duplicate)

        val file = File(dir, "bread.md")
        file.writeText("# Sourdough\n\nA sourdough starter is flour and water fermented by wild yeast.\n")
        engine.ingestFile(file.path, null, null)
        val docs = engine.documents()
        assertEquals(listOf("bees", file.path), docs.map { it.source })
        assertTrue(docs[0].metadataJson.contains("topic"))
    }

    @Test
    @Order(0)
    fun ingestFilesCancelsAndResumes() {
        val files = File(dir, "logs").apply { mkdirs() }
        val paths = (0 until 20).map { d ->
            val file = File(files, "log-%02d.txt".format(d))
            file.writeText((0 until 40).joinToString(" ") { k ->
                "On day $k of log $d the keeper counted ${k * d + 3} ships by the reef."
            })
            file.path
        } + File(files, "binary.txt").apply { writeBytes(byteArrayOf(0x50, 0x4b, 3, 4, 0, 0)) }.path
        val logs = Engine.open(EngineConfig(modelsDir = models, dbPath = File(dir, "files.db").path, device = Device.CPU))
        class Recorder(val cancel: CancelHandle?) : IngestListener {
            val progress = CopyOnWriteArrayList<IngestProgress>()
            val outcomes = CopyOnWriteArrayList<DocumentOutcome>()
            override fun onProgress(progress: IngestProgress): Boolean {
                this.progress.add(progress)
                if (progress.passagesDone > 0u) cancel?.cancel()
                return true
            }
            override fun onDocument(outcome: DocumentOutcome) { outcomes.add(outcome) }
        }
        val cancel = CancelHandle()
        val first = Recorder(cancel)
        assertThrows<PithException.Cancelled> { logs.ingestFiles(paths, null, first, cancel) }
        val stored = logs.documents().size
        assertTrue(stored < 20 && first.outcomes.size >= stored)

        val rest = Recorder(null)
        val summary = logs.ingestFiles(paths, """{"kind": "log"}""", rest, null)
        assertEquals(listOf(20uL - stored.toULong(), stored.toULong(), 1uL), listOf(summary.added, summary.duplicates, summary.failed))
        assertEquals(21, rest.outcomes.size)
        val failed = rest.outcomes.filter { it.error != null }
        assertEquals(listOf(paths.last()), failed.map { it.path })
        assertTrue(failed[0].error!!.contains("binary"))
        val last = rest.progress.last()
        assertEquals(last.bytesTotal, last.bytesDone)
        assertEquals(21uL, last.documentsDone)
        assertEquals(20, logs.documents().size)
        logs.destroy()
    }

    @Test
    @Order(1)
    fun syncFollowsTheFolderAndPdfHitsCitePages() {
        val folder = File(dir, "docs").apply { mkdirs() }
        val pdf = File(folder, "aardvark.pdf")
        File(System.getProperty("pith.documents"), "aardvark.pdf").copyTo(pdf)
        val note = File(folder, "note.md").apply { writeText("# Zebras\n\nZebras have black and white stripes.\n") }
        val docs = Engine.open(EngineConfig(modelsDir = models, dbPath = File(dir, "sync.db").path, device = Device.CPU))

        val report = docs.sync(listOf(folder.path), null, null, null)
        assertEquals(listOf(pdf.path, note.path), report.added.sorted())
        val hit = docs.search("What does the aardvark eat?", 3u, SearchMethod.HYBRID).first()
        assertEquals(pdf.path, hit.source)
        assertTrue(hit.page!! >= 1u && !hit.heading.isNullOrEmpty())
        val zebra = docs.search("stripes", 1u, SearchMethod.BM25).first()
        assertEquals(null, zebra.page)
        assertEquals("Zebras", zebra.heading)

        assertEquals(2uL, docs.sync(listOf(folder.path), null, null, null).unchanged)
        note.writeText("# Zebras\n\nZebras live in herds on the savanna.\n")
        pdf.delete()
        val changed = docs.sync(listOf(folder.path), null, null, null)
        assertEquals(listOf(note.path), changed.updated)
        assertEquals(listOf(pdf.path), changed.removed)
        assertEquals(listOf(note.path), docs.documents().map { it.source })
        assertThrows<PithException.Io> { docs.sync(listOf(File(dir, "missing").path), null, null, null) }
        docs.destroy()
    }

    @Test
    @Order(2)
    fun searchFindsThePassage() {
        for (method in SearchMethod.values()) {
            val hits = engine.search("How many eggs does the queen lay?", 2u, method)
            assertEquals("bees", hits.first().source, "method $method")
            assertTrue(hits.first().text.contains("eggs"))
            assertTrue(hits.first().endChar > hits.first().startChar)
        }
    }

    @Test
    @Order(3)
    fun askStreamsTheAnswerWithCitations() {
        val pieces = CopyOnWriteArrayList<String>()
        val listener = object : AnswerListener {
            override fun onText(text: String) { pieces.add(text) }
        }
        val answer = engine.ask("How many eggs does the queen lay a day?", AskConfig(k = 2u, maxTokens = 24u), listener, null)
        assertTrue(pieces.isNotEmpty())
        assertEquals(pieces.joinToString("").trim(), answer.text)
        assertTrue(answer.citations.isNotEmpty())
        assertEquals(bees, answer.citations.first().documentId)
        assertTrue(answer.stats.contextTokensAfter <= answer.stats.contextTokensBefore)
        assertTrue(answer.stats.firstTokenMs > 0.0)
        assertTrue(answer.attributions.isNotEmpty())
        for (a in answer.attributions) {
            assertTrue(a.startChar < a.endChar && a.endChar <= answer.text.length.toULong())
            for (s in a.supports) {
                val c = answer.citations[s.citationIndex.toInt()]
                assertTrue(c.startChar <= s.startChar && s.endChar <= c.endChar)
                assertTrue(s.text.isNotEmpty() && s.score > 0.0 && s.score <= 1.0)
            }
        }
        assertTrue(!answer.abstained && answer.grounding >= AskConfig().abstainBelow)

        val offTopic = "Who won the 1998 FIFA World Cup?"
        val declined = engine.ask(offTopic, AskConfig(k = 2u, maxTokens = 8u), null, null)
        assertTrue(declined.abstained && declined.citations.isEmpty())
        assertTrue(declined.text.contains("do not contain"))
        val forced = engine.ask(offTopic, AskConfig(k = 2u, maxTokens = 8u, abstainBelow = -1.0), null, null)
        assertTrue(!forced.abstained && forced.stats.generatedTokens > 0u)
    }

    @Test
    @Order(4)
    fun askAsyncGivesTheSameGreedyAnswer() = runBlocking {
        val config = AskConfig(k = 2u, maxTokens = 12u, pruneRatio = 0.0)
        val blocking = engine.ask("What do drones do?", config, null, null)
        val suspended = engine.askAsync("What do drones do?", config, null, null)
        assertEquals(blocking.text, suspended.text)

        val conversation = Conversation()
        engine.chatAsync(conversation, "What does a honeybee queen do?", config, null, null)
        val followUp = engine.chatAsync(conversation, "How many eggs does she lay a day?", config, null, null)
        val turns = conversation.turns()
        assertEquals(2, turns.size)
        assertTrue(turns[1].standalone.contains("queen"))
        assertEquals(followUp.text, turns[1].answer)
        // The first turn's passages go first again: their cache is reused.
        val stats = followUp.stats
        assertTrue(stats.contextTokensReused > 0uL && stats.contextTokensReused <= stats.contextTokensBefore)
    }

    @Test
    @Order(5)
    fun askIsCancelledFromAnotherThread() {
        val cancel = CancelHandle()
        val listener = object : AnswerListener {
            override fun onText(text: String) { Thread { cancel.cancel() }.apply { start(); join() } }
        }
        assertThrows<PithException.Cancelled> {
            engine.ask("What is the waggle dance?", AskConfig(k = 2u, maxTokens = 200u, abstainBelow = -1.0), listener, cancel)
        }
        assertTrue(cancel.isCancelled())
        cancel.reset()
        assertFalse(cancel.isCancelled())
    }

    @Test
    @Order(6)
    fun errorsComeBackAsExceptionsWithMessages() {
        val bad = assertThrows<PithException.InvalidArgument> { engine.ingestText("x", "text", "[1]", null) }
        assertTrue(bad.message!!.contains("JSON object"))
        assertThrows<PithException.InvalidArgument> { engine.search("  ", 3u, SearchMethod.HYBRID) }
        assertThrows<PithException.Io> { engine.ingestFile(File(dir, "missing.txt").path, null, null) }
        val binary = File(dir, "image.txt").apply { writeBytes(byteArrayOf(0x50, 0x4b, 0, 0, 3, 4)) }
        assertThrows<PithException.InvalidArgument> { engine.ingestFile(binary.path, null, null) }
        assertThrows<PithException.Io> {
            Engine.open(EngineConfig(modelsDir = File(dir, "no-models").path, dbPath = File(dir, "x.db").path))
        }
        engine.deleteDocument(bees)
        assertThrows<PithException.NotFound> { engine.deleteDocument(bees) }
    }
}
