// The application: one profile's session (the profile database in the app's files, the Keystore
// key, the app's language from the system's), and the deadline notifications' safety net.

package org.weldguard.app.android

import android.app.Application
import android.content.Context
import java.util.Locale
import org.weldguard.android.Deadlines
import org.weldguard.android.KeystoreKey
import org.weldguard.android.PresencePrompt
import org.weldguard.android.SessionHolder
import org.weldguard.app.AppLanguage
import org.weldguard.app.EnrolmentRecord
import org.weldguard.app.EnrolmentStore
import org.weldguard.app.WeldGuardSession

class WeldGuardApplication : Application(), SessionHolder {
    /** Set by the activity that can show BiometricPrompt (the approver's key asks through it). */
    @Volatile
    var prompt: PresencePrompt? = null

    override val session: WeldGuardSession by lazy {
        val key = KeystoreKey.getOrCreate(this, KEY_ALIAS, requireUserAuth = approverPhone(), prompt = { s, p -> prompt?.authenticate(s, p) })
        WeldGuardSession.open(
            profilePath = getDatabasePath("weldguard-profile.db").apply { parentFile?.mkdirs() }.path,
            key = key,
            language = if (Locale.getDefault().language == "zh") AppLanguage.ZH else AppLanguage.EN,
            enrolmentStore = PreferencesEnrolmentStore(this),
        )
    }

    override fun onCreate() {
        super.onCreate()
        Deadlines.schedulePeriodic(this)
    }

    /** An approver's phone signs with a key that needs the person every time. Chosen when the
     * profile is set up (a setting kept with the enrolment). */
    private fun approverPhone(): Boolean =
        getSharedPreferences(PREFS, Context.MODE_PRIVATE).getBoolean("approver_key", false)

    companion object {
        const val KEY_ALIAS = "weldguard-person-key"
        const val PREFS = "weldguard"
    }
}

/** The enrolment (token included) in the app's private preferences. A production build keeps
 * the token in EncryptedSharedPreferences or wraps it with a Keystore key. */
class PreferencesEnrolmentStore(context: Context) : EnrolmentStore {
    private val prefs = context.getSharedPreferences(WeldGuardApplication.PREFS, Context.MODE_PRIVATE)

    override fun load(): EnrolmentRecord? {
        val server = prefs.getString("server", null) ?: return null
        return EnrolmentRecord(
            server = server,
            deviceId = prefs.getString("device_id", "")!!,
            token = prefs.getString("token", "")!!,
            tokenExpiresAtMs = prefs.getLong("token_expires", -1).takeIf { it >= 0 },
            personName = prefs.getString("person", "")!!,
            personId = prefs.getString("person_id", "")!!,
            role = org.weldguard.core.Role.valueOf(prefs.getString("role", "WELDER")!!),
            permitRoles = prefs.getString("permit_roles", null)?.split(',')?.filter { it.isNotEmpty() },
        )
    }

    override fun save(record: EnrolmentRecord?) {
        prefs.edit().apply {
            if (record == null) {
                for (key in listOf("server", "device_id", "token", "token_expires", "person", "person_id", "role", "permit_roles")) {
                    remove(key)
                }
            } else {
                putString("server", record.server)
                putString("device_id", record.deviceId)
                putString("token", record.token)
                putLong("token_expires", record.tokenExpiresAtMs ?: -1)
                putString("person", record.personName)
                putString("person_id", record.personId)
                putString("role", record.role.name)
                putString("permit_roles", record.permitRoles?.joinToString(","))
            }
        }.apply()
    }
}
