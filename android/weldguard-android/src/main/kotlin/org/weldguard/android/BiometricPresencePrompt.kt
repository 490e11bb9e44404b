// PresencePrompt over androidx.biometric: shows BiometricPrompt on the main thread with the
// signature as its CryptoObject and hands the authenticated Signature back to the signing thread.

package org.weldguard.android

import android.os.Build
import android.os.Handler
import android.os.Looper
import androidx.biometric.BiometricManager.Authenticators
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import java.security.Signature
import java.util.concurrent.CompletableFuture
import org.weldguard.core.SignPurpose

class BiometricPresencePrompt(private val activity: FragmentActivity) : PresencePrompt {
    override fun authenticate(signature: Signature, purpose: SignPurpose): Signature? {
        check(Looper.myLooper() != Looper.getMainLooper()) { "authenticate blocks: call it off the main thread" }
        val answer = CompletableFuture<Signature?>()
        Handler(Looper.getMainLooper()).post {
            val callback = object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                    answer.complete(result.cryptoObject?.signature)
                }

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                    answer.complete(null)
                }
            }
            val prompt = BiometricPrompt(activity, ContextCompat.getMainExecutor(activity), callback)
            val info = BiometricPrompt.PromptInfo.Builder()
                .setTitle(activity.getString(R.string.wg_sign_title))
                .setSubtitle(activity.getString(subtitle(purpose)))
                .apply {
                    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                        setAllowedAuthenticators(Authenticators.BIOMETRIC_STRONG or Authenticators.DEVICE_CREDENTIAL)
                    } else {
                        setAllowedAuthenticators(Authenticators.BIOMETRIC_STRONG)
                        setNegativeButtonText(activity.getString(R.string.wg_sign_cancel))
                    }
                }
                .build()
            prompt.authenticate(info, BiometricPrompt.CryptoObject(signature))
        }
        return answer.get()
    }

    private fun subtitle(purpose: SignPurpose): Int = when (purpose) {
        SignPurpose.PERMIT_SUBMIT -> R.string.wg_sign_permit_submit
        SignPurpose.PERMIT_SITE_CHECK -> R.string.wg_sign_permit_site_check
        SignPurpose.PERMIT_APPROVE -> R.string.wg_sign_permit_approve
        SignPurpose.PERMIT_REJECT -> R.string.wg_sign_permit_reject
        SignPurpose.PERMIT_CLOSE -> R.string.wg_sign_permit_close
        SignPurpose.PERMIT_CODE -> R.string.wg_sign_permit_code
        SignPurpose.INSPECTION_SEAL -> R.string.wg_sign_inspection
        SignPurpose.CREDENTIAL_PRESENTATION -> R.string.wg_sign_presentation
    }
}
