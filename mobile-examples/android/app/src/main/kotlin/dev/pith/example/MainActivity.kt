package dev.pith.example

import android.app.Application
import android.content.res.AssetManager
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import dev.pith.AnswerListener
import dev.pith.AskConfig
import dev.pith.CancelHandle
import dev.pith.Citation
import dev.pith.Engine
import dev.pith.EngineConfig
import dev.pith.IngestResult
import dev.pith.PithException
import java.io.File
import java.io.IOException
import kotlin.math.roundToInt
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent {
            MaterialTheme {
                Surface(Modifier.fillMaxSize()) { AskScreen() }
            }
        }
    }
}

/** Holds the engine in a ViewModel so that rotating the screen does not reload the models. */
class AskViewModel(app: Application) : AndroidViewModel(app) {
    var status by mutableStateOf("Preparing the models…")
        private set
    var ready by mutableStateOf(false)
        private set
    var asking by mutableStateOf(false)
        private set
    var answer by mutableStateOf("")
        private set
    var citations by mutableStateOf(emptyList<Citation>())
        private set

    private var engine: Engine? = null
    private var cancelHandle: CancelHandle? = null

    init {
        viewModelScope.launch {
            try {
                val (opened, sample) = withContext(Dispatchers.IO) { openEngine(getApplication()) }
                engine = opened
                ready = true
                val stored = if (sample.duplicate) "already stored" else "${sample.passages} passages stored"
                status = "Ready on ${opened.device()}; honeybees.txt $stored"
            } catch (e: PithException) {
                status = "Cannot open pith: ${e.message}"
            } catch (e: IOException) {
                status = "Cannot copy the models: ${e.message}"
            }
        }
    }

    fun ask(question: String) {
        val engine = engine ?: return
        val handle = CancelHandle().also { cancelHandle = it }
        answer = ""
        citations = emptyList()
        asking = true
        status = "Thinking…"
        viewModelScope.launch {
            // The listener runs on pith's ask thread; the channel brings the pieces to the
            // main thread in the order they were generated.
            val pieces = Channel<String>(Channel.UNLIMITED)
            val shown = launch { for (piece in pieces) answer += piece }
            val listener = object : AnswerListener {
                override fun onText(text: String) {
                    pieces.trySend(text)
                }
            }
            try {
                val result = engine.askAsync(question, AskConfig(k = 3u, maxTokens = 128u), listener, handle)
                pieces.close()
                shown.join()
                answer = result.text
                citations = result.citations
                val stats = result.stats
                status = "First token after ${stats.firstTokenMs.roundToInt()} ms; context pruned " +
                    "from ${stats.contextTokensBefore} to ${stats.contextTokensAfter} tokens"
            } catch (e: PithException.Cancelled) {
                status = "Cancelled"
            } catch (e: PithException) {
                status = "Failed: ${e.message}"
            } finally {
                pieces.close()
                asking = false
            }
        }
    }

    fun cancel() {
        cancelHandle?.cancel()
    }

    override fun onCleared() {
        // Cancelling viewModelScope abandons askAsync but does not stop generation on
        // pith's thread; only the handle does.
        cancelHandle?.cancel()
        engine?.close()
    }
}

/** Copies the bundled models out of the APK once, opens the engine and ingests the sample. */
private fun openEngine(app: Application): Pair<Engine, IngestResult> {
    val models = File(app.filesDir, "models")
    if (!models.exists()) {
        // Copied under another name and renamed when complete, so a first run that is
        // killed mid-copy starts over instead of opening half a model.
        val partial = File(app.filesDir, "models.partial").apply { deleteRecursively() }
        copyAssets(app.assets, "models", partial)
        if (!partial.renameTo(models)) throw IOException("cannot rename $partial to $models")
    }
    val engine = Engine.open(
        EngineConfig(
            modelsDir = models.path,
            dbPath = File(app.filesDir, "pith.db").path,
            // No device: the GPU through wgpu and Vulkan where the phone has one, else the
            // CPU (also on an emulator, whose Vulkan is software).
        ),
    )
    val sample = app.assets.open("samples/honeybees.txt").bufferedReader().use { it.readText() }
    // Safe on every launch: content already stored is recognised before any embedding.
    return engine to engine.ingestText("honeybees.txt", sample, null, null)
}

private fun copyAssets(assets: AssetManager, path: String, to: File) {
    val children = assets.list(path).orEmpty()
    if (children.isEmpty()) {
        to.parentFile?.mkdirs()
        assets.open(path).use { input -> to.outputStream().use { input.copyTo(it) } }
    } else {
        children.forEach { copyAssets(assets, "$path/$it", File(to, it)) }
    }
}

@Composable
fun AskScreen(model: AskViewModel = viewModel()) {
    var question by rememberSaveable { mutableStateOf("How many eggs does the queen lay a day?") }
    Column(
        Modifier
            .fillMaxSize()
            .safeDrawingPadding()
            .verticalScroll(rememberScrollState())
            .padding(16.dp),
        verticalArrangement = Arrangement.spacedBy(12.dp),
    ) {
        OutlinedTextField(
            value = question,
            onValueChange = { question = it },
            modifier = Modifier.fillMaxWidth(),
            label = { Text("Question") },
        )
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(onClick = { model.ask(question) }, enabled = model.ready && !model.asking && question.isNotBlank()) {
                Text("Ask")
            }
            OutlinedButton(onClick = model::cancel, enabled = model.asking) { Text("Cancel") }
        }
        Text(model.status, style = MaterialTheme.typography.bodySmall)
        Text(model.answer, style = MaterialTheme.typography.bodyLarge)
        model.citations.forEachIndexed { i, c ->
            Text(
                "[${i + 1}] ${c.source}" + (c.page?.let { ", p. $it" } ?: "") +
                    (c.heading?.let { ", § $it" } ?: "") + ": ${c.snippet}",
                style = MaterialTheme.typography.bodySmall,
            )
        }
    }
}
