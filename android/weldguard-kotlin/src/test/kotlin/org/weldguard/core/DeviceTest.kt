// A profile through the generated Kotlin bindings, the way the Android shell calls it: typed rule
// sets and states, texts in the shell's language, and the long calls as suspend funs that a
// cancelled coroutine stops (the library raises the call's cancel handle).

package org.weldguard.core

import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking

/** 2026-12-01 09:00 China time. */
private const val AT: Long = 1_796_086_800L

private fun fixtureText(name: String): String {
    val dir = System.getProperty("weldguard.fixtures") ?: error("-Dweldguard.fixtures is not set")
    return File(dir, name).readText()
}

private fun openProfile(): Device {
    val dir = Files.createTempDirectory("weldguard-kotlin").toFile()
    dir.deleteOnExit()
    val device = Device.open(File(dir, "profile.sqlite").path)
    device.setTrust(fixtureText("trust.json"), AT)
    return device
}

private object Quiet : SyncListener {
    override fun onProgress(stage: SyncStage, done: ULong, total: ULong?) {}
    override fun onToken(token: String, expiresAtMs: Long?) {}
}

class DeviceTest {
    @Test
    fun scanToStartAnswersWithATypedRuleSetAndTextsInTheShellsLanguage() {
        val device = openProfile()
        val label = fixtureText("machine-label.txt").trim()
        val result = device.startWork(label, "WG1:NOT-A-CODE", "site-1", AT, null, Lang.EN)
        assertFalse(result.allowed)
        assertEquals(RuleSet.MEM_ORDER19, result.ruleSet)
        val reason = result.reasons.first { it.code == "code.malformed" }
        assertEquals(reason.en, reason.text)
        assertTrue(reason.zh.any { it in '\u4e00'..'\u9fff' })
        // A machine label is no welder's code.
        val e = assertFailsWith<WeldGuardException.InvalidInput> { device.checkWelder(label, AT, Lang.ZH) }
        assertEquals("code.not_a_welder_code", e.code)
        assertEquals(0, device.workSessions(null, 10u).sessions.size)
        assertEquals(0, device.outboxEntries(OutboxFilter.ALL, 10u).entries.size)
    }

    @Test
    fun enrolmentWithoutACodeIsATypedError() = runBlocking {
        val device = openProfile()
        val e = assertFailsWith<WeldGuardException.InvalidInput> {
            device.enrol("http://127.0.0.1:9", " ", ByteArray(0), "phone", SyncTask(), AT)
        }
        assertEquals("enrol.no_code", e.code)
    }

    @Test
    fun aCancelledCoroutineStopsTheSync() = runBlocking {
        val device = openProfile()
        // A server that takes the connection and never answers: the sync is surely still running
        // when the coroutine is cancelled (a refused port could fail it first, and fail the test).
        val silent = ServerSocket(0)
        val port = silent.localPort
        val task = SyncTask()
        val job = launch {
            runCatching { device.sync("http://127.0.0.1:$port", "token", Quiet, task, AT) }
        }
        delay(300)
        job.cancelAndJoin()
        assertTrue(task.isCancelled(), "dropping the call raises its cancel handle")
        silent.close()
        // The handle cancels by itself too: a typed, non-retryable error.
        val handle = SyncTask()
        handle.cancel()
        val e = assertFailsWith<WeldGuardException.Sync> {
            device.sync("http://127.0.0.1:$port", "token", Quiet, handle, AT)
        }
        assertEquals("sync.cancelled", e.code)
        assertFalse(e.retryable)
    }
}
