// The idiomatic layer over the generated bindings (org.weldguard.core): one WeldGuardSession per
// user profile, owning the Device, the app's language, the clock, the enrolment the shell keeps and
// the phone's key. Blocking FFI calls run on an injected dispatcher; the FFI's async calls (enrol,
// sync, scanImage) are awaited directly. No Android import: it runs on the JVM in the tests.

package org.weldguard.app

import java.nio.ByteBuffer
import java.util.concurrent.atomic.AtomicReference
import kotlin.time.Duration
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.weldguard.core.Device
import org.weldguard.core.DeviceKey
import org.weldguard.core.DueItem
import org.weldguard.core.Enrolment
import org.weldguard.core.Lang
import org.weldguard.core.OutboxSummary
import org.weldguard.core.PersonSigner
import org.weldguard.core.Role
import org.weldguard.core.ScanSettings
import org.weldguard.core.ScannedQr
import org.weldguard.core.SyncListener
import org.weldguard.core.SyncStage
import org.weldguard.core.SyncSummary
import org.weldguard.core.SyncTask
import org.weldguard.core.scanFrameBuffer
import org.weldguard.core.scanImageWith

/** The app's language setting; every text the core gives is asked for in it. */
enum class AppLanguage(val lang: Lang) {
    ZH(Lang.ZH),
    EN(Lang.EN),
}

/** The time the shell hands to the core (the core reads no clock). Injected: tests fix it. */
fun interface Clock {
    fun nowUnix(): Long

    companion object {
        /** The system clock. */
        val System: Clock = Clock { java.lang.System.currentTimeMillis() / 1000 }
    }
}

/** The phone owner's key: the device key the profile enrolled with (credential presentations,
 * token refresh) and the person's signing key (inspection seals, the permit steps they sign). On
 * Android the Keystore key of weldguard-android; in the JVM tests a java.security key. */
interface PhoneKey : PersonSigner, DeviceKey

/** Who this profile is enrolled as, and the token: what the shell keeps (Android: the Keystore /
 * encrypted preferences), never the profile database. */
data class EnrolmentRecord(
    val server: String,
    val deviceId: String,
    val token: String,
    val tokenExpiresAtMs: Long?,
    val personName: String,
    val personId: String,
    val role: Role,
    val permitRoles: List<String>?,
) {
    override fun toString(): String = "EnrolmentRecord(server=$server, deviceId=$deviceId, personId=$personId, role=$role)"
}

/** Where the shell keeps the enrolment (Android: encrypted storage; tests: memory). */
interface EnrolmentStore {
    fun load(): EnrolmentRecord?
    fun save(record: EnrolmentRecord?)
}

/** An [EnrolmentStore] in memory. */
class MemoryEnrolmentStore(initial: EnrolmentRecord? = null) : EnrolmentStore {
    private val held = AtomicReference(initial)
    override fun load(): EnrolmentRecord? = held.get()
    override fun save(record: EnrolmentRecord?) = held.set(record)
}

/** One event of a sync, as [WeldGuardSession.sync] emits them. */
sealed interface SyncEvent {
    data class Progress(val stage: SyncStage, val done: Long, val total: Long?) : SyncEvent
    data class Finished(val summary: SyncSummary) : SyncEvent
    data class Failed(val error: UiError, val cause: Throwable) : SyncEvent
}

/** One user profile's session. */
class WeldGuardSession(
    val device: Device,
    val key: PhoneKey,
    val clock: Clock = Clock.System,
    language: AppLanguage = AppLanguage.ZH,
    val enrolmentStore: EnrolmentStore = MemoryEnrolmentStore(),
    val dispatcher: CoroutineDispatcher = Dispatchers.IO,
) : AutoCloseable {
    private val languageFlow = MutableStateFlow(language)
    private val enrolmentFlow = MutableStateFlow(enrolmentStore.load())

    /** The app's language setting (a screen re-asks the core when it changes). */
    val languages: StateFlow<AppLanguage> = languageFlow.asStateFlow()
    var language: AppLanguage
        get() = languageFlow.value
        set(value) {
            languageFlow.value = value
        }
    val lang: Lang get() = language.lang

    /** The enrolment the shell keeps; null before enrolling. */
    val enrolment: StateFlow<EnrolmentRecord?> = enrolmentFlow.asStateFlow()

    fun now(): Long = clock.nowUnix()

    /** Run a blocking FFI call on the session's dispatcher. */
    suspend fun <T> call(block: Device.() -> T): T = withContext(dispatcher) { device.block() }

    /** Enrol with the platform with a one-time code; the enrolment (token included) is kept in the
     * [enrolmentStore]. */
    suspend fun enrol(serverUrl: String, code: String, deviceName: String): Enrolment {
        val publicKey = withContext(dispatcher) { key.publicKey() }
        val e = device.enrol(serverUrl, code, publicKey, deviceName, SyncTask(), now())
        val record = EnrolmentRecord(
            server = e.server, deviceId = e.deviceId, token = e.token,
            tokenExpiresAtMs = e.tokenExpiresAtMs, personName = e.person, personId = e.personId,
            role = e.role, permitRoles = e.permitRoles,
        )
        enrolmentStore.save(record)
        enrolmentFlow.value = record
        return e
    }

    /** Sync with the platform: progress events, then Finished or Failed. Cancelling the collector
     * cancels the sync (the SyncTask and the call). A refreshed token is kept at once. */
    fun sync(): Flow<SyncEvent> = callbackFlow {
        val task = SyncTask()
        val record = enrolmentFlow.value
        if (record == null) {
            val e = ShellException.notEnrolled()
            send(SyncEvent.Failed(uiError(e, language), e))
            close()
        } else {
            val listener = object : SyncListener {
                override fun onProgress(stage: SyncStage, done: ULong, total: ULong?) {
                    trySend(SyncEvent.Progress(stage, done.toLong(), total?.toLong()))
                }

                override fun onToken(token: String, expiresAtMs: Long?) {
                    val kept = enrolmentFlow.value ?: return
                    val updated = kept.copy(token = token, tokenExpiresAtMs = expiresAtMs)
                    enrolmentStore.save(updated)
                    enrolmentFlow.value = updated
                }
            }
            launch {
                val event = try {
                    val summary = device.syncWithKey(
                        record.server, record.token, record.deviceId, key, listener, task, now(),
                    )
                    SyncEvent.Finished(summary)
                } catch (e: kotlinx.coroutines.CancellationException) {
                    throw e
                } catch (e: Exception) {
                    SyncEvent.Failed(uiError(e, language), e)
                }
                send(event)
                close()
            }
        }
        awaitClose { task.cancel() }
    }

    /** What is due, polled every [period] on the session's clock, in the app's language; emits
     * when the list changes. */
    fun deadlines(period: Duration): Flow<List<DueItem>> = flow {
        while (true) {
            emit(call { due(now(), lang) })
            delay(period)
        }
    }.distinctUntilChanged()

    /** Counts of the outbox. */
    suspend fun outboxSummary(): OutboxSummary = call { outboxSummary() }

    /** Every QR code in a photo's bytes (PNG or JPEG). */
    suspend fun scanImage(bytes: ByteArray, settings: ScanSettings): List<ScannedQr> =
        scanImageWith(bytes, settings)

    /** The QR codes in a camera frame's luma plane where the camera keeps it (CameraX
     * `planes[0].buffer`, a direct buffer, and its row stride): lent to the core for the call, no
     * copy (`cargo xtask bench ffi` measures what the copy would cost). The caller keeps the
     * buffer valid (the image open) until this returns. A heap buffer is copied into a direct one
     * first. */
    suspend fun scanFrame(luma: ByteBuffer, width: Int, height: Int, rowStride: Int, settings: ScanSettings): List<ScannedQr> =
        withContext(dispatcher) {
            val direct = if (luma.isDirect) luma else ByteBuffer.allocateDirect(luma.remaining()).put(luma.duplicate()).flip()
            scanFrameBuffer(direct, width.toUInt(), height.toUInt(), rowStride.toUInt(), settings)
        }

    /** [scanFrame] on a frame held in a byte array (copied into a direct buffer once). */
    suspend fun scanFrame(luma: ByteArray, width: Int, height: Int, rowStride: Int, settings: ScanSettings): List<ScannedQr> =
        scanFrame(ByteBuffer.wrap(luma), width, height, rowStride, settings)

    override fun close() = device.close()

    companion object {
        /** Open (or create) the profile database at [profilePath]. */
        fun open(
            profilePath: String,
            key: PhoneKey,
            clock: Clock = Clock.System,
            language: AppLanguage = AppLanguage.ZH,
            enrolmentStore: EnrolmentStore = MemoryEnrolmentStore(),
            dispatcher: CoroutineDispatcher = Dispatchers.IO,
        ): WeldGuardSession =
            WeldGuardSession(Device.open(profilePath), key, clock, language, enrolmentStore, dispatcher)
    }
}
