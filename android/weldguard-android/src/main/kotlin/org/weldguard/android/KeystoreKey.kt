// The phone's key in Android Keystore: ECDSA P-256, in StrongBox when the phone has one. It is the
// device key the profile enrols with and the person's signing key (PhoneKey). A key made with
// requireUserAuth (an approver's phone: permit approval needs the person's presence) signs only
// after BiometricPrompt authenticated that very signature (a CryptoObject); only then does it
// answer userPresent = true. The core gets the public key SEC1-compressed and r || s signatures
// (P256 converts Keystore's X.509 key and DER signature).

package org.weldguard.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import java.security.KeyPairGenerator
import java.security.KeyStore
import java.security.PrivateKey
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import org.weldguard.app.P256
import org.weldguard.app.PhoneKey
import org.weldguard.core.SignPurpose
import org.weldguard.core.SignRequest
import org.weldguard.core.SignedBytes
import org.weldguard.core.WeldGuardException

/** Asks the person to authenticate one signature (BiometricPrompt with a CryptoObject). Called
 * off the main thread; blocks until the person answered. Returns the authenticated Signature, or
 * null when the person cancelled. */
fun interface PresencePrompt {
    fun authenticate(signature: Signature, purpose: SignPurpose): Signature?
}

class KeystoreKey private constructor(
    private val alias: String,
    /** Every signature needs the person's presence (biometric or device credential). */
    val requiresUserAuth: Boolean,
    private val prompt: PresencePrompt?,
) : PhoneKey {

    private fun entry(): KeyStore.PrivateKeyEntry {
        val store = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        return store.getEntry(alias, null) as? KeyStore.PrivateKeyEntry
            ?: throw WeldGuardException.Signing("keystore.missing", "设备密钥不存在：$alias", "The device key is missing: $alias")
    }

    override fun publicKey(): ByteArray = P256.compressed(entry().certificate.publicKey as ECPublicKey)

    /** Sign [message]; through the prompt when the key needs the person. Returns the signature and
     * whether the person was verified for it. */
    private fun signWith(message: ByteArray, purpose: SignPurpose): Pair<ByteArray, Boolean> {
        val key: PrivateKey = entry().privateKey
        val signature = Signature.getInstance("SHA256withECDSA").apply { initSign(key) }
        if (!requiresUserAuth) {
            signature.update(message)
            return P256.derToRaw(signature.sign()) to false
        }
        val ask = prompt ?: throw WeldGuardException.Signing(
            "keystore.no_prompt",
            "此密钥须验证本人，但没有可用的验证界面",
            "This key needs the person's presence but no prompt is available",
        )
        val authorised = ask.authenticate(signature, purpose) ?: throw WeldGuardException.Signing(
            "keystore.cancelled",
            "已取消身份验证，未签名",
            "Authentication was cancelled; nothing was signed",
        )
        authorised.update(message)
        return P256.derToRaw(authorised.sign()) to true
    }

    override fun sign(request: SignRequest): SignedBytes {
        val (signature, present) = signWith(request.message, request.purpose)
        return SignedBytes(signature = signature, userPresent = present)
    }

    /** The device key's signatures (credential presentations, token refresh). */
    override fun sign(message: ByteArray): ByteArray = signWith(message, SignPurpose.CREDENTIAL_PRESENTATION).first

    companion object {
        private const val KEYSTORE = "AndroidKeyStore"

        /** The key under [alias], made on first use (in StrongBox when the phone has one). */
        fun getOrCreate(context: Context, alias: String, requireUserAuth: Boolean, prompt: PresencePrompt?): KeystoreKey {
            val store = KeyStore.getInstance(KEYSTORE).apply { load(null) }
            if (!store.containsAlias(alias)) {
                val strongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
                    context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)
                try {
                    generate(alias, requireUserAuth, strongBox)
                } catch (e: StrongBoxUnavailableException) {
                    generate(alias, requireUserAuth, strongBox = false)
                }
            }
            return KeystoreKey(alias, requireUserAuth, prompt)
        }

        private fun generate(alias: String, requireUserAuth: Boolean, strongBox: Boolean) {
            val spec = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .setDigests(KeyProperties.DIGEST_SHA256)
                .apply {
                    if (strongBox && Build.VERSION.SDK_INT >= Build.VERSION_CODES.P) setIsStrongBoxBacked(true)
                    if (requireUserAuth) {
                        setUserAuthenticationRequired(true)
                        setInvalidatedByBiometricEnrollment(true)
                        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                            // 0: every use is authorised on its own (a CryptoObject per signature).
                            setUserAuthenticationParameters(
                                0,
                                KeyProperties.AUTH_BIOMETRIC_STRONG or KeyProperties.AUTH_DEVICE_CREDENTIAL,
                            )
                        } else {
                            @Suppress("DEPRECATION")
                            setUserAuthenticationValidityDurationSeconds(-1)
                        }
                    }
                }
                .build()
            KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, KEYSTORE).apply { initialize(spec) }.generateKeyPair()
        }
    }
}
