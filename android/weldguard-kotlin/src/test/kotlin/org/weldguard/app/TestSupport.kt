// What the JVM tests of the shell share: a software P-256 key signing as Android Keystore would
// (java.security, DER turned into r || s, the public key compressed), a clock the test moves, the
// fixtures, the platform's real server on loopback (started and stopped by the test) and the lead's
// wg-shell-world tool for the admin side.

package org.weldguard.app

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.io.StringReader
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.time.ZoneOffset
import java.time.ZonedDateTime
import java.util.Properties
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import org.weldguard.core.SignPurpose
import org.weldguard.core.SignRequest
import org.weldguard.core.SignedBytes

/** A software P-256 key, signing as the Keystore would; reports the person present when
 * [present] and the request asked for presence (a BiometricPrompt the person passed). */
class JcaKey(private val present: Boolean = false) : PhoneKey {
    private val pair = KeyPairGenerator.getInstance("EC")
        .apply { initialize(ECGenParameterSpec("secp256r1")) }
        .generateKeyPair()
    val asked = mutableListOf<Pair<SignPurpose, Boolean>>()

    override fun publicKey(): ByteArray = P256.compressed(pair.public as ECPublicKey)

    private fun raw(message: ByteArray): ByteArray {
        val der = Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
        return P256.derToRaw(der)
    }

    override fun sign(request: SignRequest): SignedBytes {
        synchronized(asked) { asked += request.purpose to request.requirePresence }
        return SignedBytes(signature = raw(request.message), userPresent = present && request.requirePresence)
    }

    override fun sign(message: ByteArray): ByteArray = raw(message)
}

/** A clock the test sets; starts at the system time. */
class TestClock(start: Long = System.currentTimeMillis() / 1000) : Clock {
    private val at = AtomicLong(start)
    override fun nowUnix(): Long = at.get()
    fun set(unix: Long) = at.set(unix)
    fun system() = at.set(System.currentTimeMillis() / 1000)
}

/** 2026-11-30 (a Monday) at h:m, China time, in Unix seconds: the permit's day. */
fun t(h: Int, m: Int): Long = ZonedDateTime.of(2026, 11, 30, h, m, 0, 0, ZoneOffset.ofHours(8)).toEpochSecond()

fun fixture(name: String): File {
    val dir = System.getProperty("weldguard.fixtures") ?: error("-Dweldguard.fixtures is not set")
    return File(dir, name)
}

/** A directory of its own under java.io.tmpdir (scripts/kotlin-tests.sh points it into
 * target/kotlin-tests, cleared at each run). */
fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile()

/** A fresh profile's session. */
fun newSession(
    key: PhoneKey = JcaKey(),
    clock: Clock = TestClock(),
    language: AppLanguage = AppLanguage.ZH,
): WeldGuardSession = WeldGuardSession.open(File(tempDir("wg-phone"), "profile.db").path, key, clock, language)

/** A scope for view models; [close] cancels it. */
class TestScope : AutoCloseable {
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    override fun close() = scope.cancel()
}

private fun bin(name: String): File {
    val dir = System.getProperty("weldguard.bin") ?: error("-Dweldguard.bin is not set")
    val file = File(dir, name)
    check(file.canExecute()) { "$file is missing: build it (cargo xtask test builds it)" }
    return file
}

/** The platform's server on loopback over a data directory of its own; [stop] kills it and
 * [start] starts it again over the same data on the same port. */
class Platform : AutoCloseable {
    val adminToken = "shell-tests-admin-token-0123456789"
    private val dataDir = tempDir("wg-server")
    private var process: Process? = null
    private var port = 0
    val url: String get() = "http://127.0.0.1:$port"

    init {
        start()
    }

    fun start() {
        val p = ProcessBuilder(
            bin("weldguard-server").path, "--data-dir", dataDir.path,
            "--listen", "127.0.0.1:$port", "--admin-token", adminToken,
        ).redirectError(ProcessBuilder.Redirect.DISCARD).start()
        val lines = BufferedReader(InputStreamReader(p.inputStream, Charsets.UTF_8))
        while (true) {
            val line = lines.readLine() ?: run {
                p.destroyForcibly()
                error("the server exited before listening (status ${p.waitFor()})")
            }
            val rest = line.removePrefix("listening on http://")
            if (rest != line) {
                port = rest.substringAfterLast(':').trim().toInt()
                break
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        Thread { lines.useLines { it.forEach { } } }.apply { isDaemon = true }.start()
        process = p
    }

    fun stop() {
        val p = process ?: return
        p.destroy()
        if (!p.waitFor(10, TimeUnit.SECONDS)) p.destroyForcibly().waitFor()
        process = null
    }

    override fun close() = stop()

    /** Run wg-shell-world with [args] (the server and token added) and read its key=value lines. */
    fun world(vararg args: String): Properties {
        val command = listOf(bin("wg-shell-world").path, *args, "--server", url, "--admin-token", adminToken)
        val p = ProcessBuilder(command).start()
        val out = p.inputStream.readBytes().toString(Charsets.UTF_8)
        val err = p.errorStream.readBytes().toString(Charsets.UTF_8)
        check(p.waitFor() == 0) { "wg-shell-world ${args.first()} failed: $err" }
        return Properties().apply { load(StringReader(out)) }
    }

    /** The idempotency keys of the records of [kind] the platform holds, in arrival order. */
    fun held(kind: String): List<String> {
        val p = world("held", "--kind", kind)
        val count = p.getProperty("count").toInt()
        return (0 until count).map { p.getProperty("record.$it.key") }
    }
}

/** The platform set up by wg-shell-world (`setup`): the registry, the codes as PNG labels, the
 * enrolment codes. */
class World(val platform: Platform) {
    private val dir = tempDir("wg-world")
    val p: Properties = platform.world("setup", "--out", dir.path)
    operator fun get(key: String): String = p.getProperty(key) ?: error("wg-shell-world gave no $key")
    fun image(key: String): ByteArray = File(get("image.$key")).readBytes()
}
