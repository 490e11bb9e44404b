// ECDSA P-256 in the forms the core takes: a public key SEC1-compressed (33 bytes) and a signature
// as the 64 bytes r || s. java.security (and Android Keystore) give an X.509 key and a DER
// signature; a Keystore signer and the JVM tests' software signer both convert here.

package org.weldguard.app

import java.math.BigInteger
import java.security.interfaces.ECPublicKey

object P256 {
    private fun fixed32(n: BigInteger): ByteArray {
        val b = n.toByteArray()
        require(b.size <= 33) { "not a P-256 value" }
        return when {
            b.size == 32 -> b
            b.size > 32 -> b.copyOfRange(b.size - 32, b.size)
            else -> ByteArray(32 - b.size) + b
        }
    }

    /** The key as SEC1 compressed: 0x02 or 0x03 (the parity of y), then x in 32 bytes. */
    fun compressed(key: ECPublicKey): ByteArray {
        val w = key.w
        val prefix: Byte = if (w.affineY.testBit(0)) 3 else 2
        return byteArrayOf(prefix) + fixed32(w.affineX)
    }

    /** A DER ECDSA signature (SEQUENCE { INTEGER r, INTEGER s }) as r || s. */
    fun derToRaw(der: ByteArray): ByteArray {
        require(der.size >= 8 && der[0].toInt() == 0x30) { "not a DER ECDSA signature" }
        var i = if (der[1].toInt() and 0x80 != 0) 2 + (der[1].toInt() and 0x7f) else 2
        fun integer(): BigInteger {
            require(i + 2 <= der.size && der[i].toInt() == 0x02) { "not a DER integer" }
            val len = der[i + 1].toInt() and 0xff
            require(i + 2 + len <= der.size) { "truncated DER integer" }
            val value = BigInteger(1, der.copyOfRange(i + 2, i + 2 + len))
            i += 2 + len
            return value
        }
        val r = integer()
        val s = integer()
        return fixed32(r) + fixed32(s)
    }
}
