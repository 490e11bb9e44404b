// The tests' software P-256 key (ES256), standing in for the Secure Enclave: CryptoKit's
// software key on Apple platforms; on Linux, where CryptoKit is missing (and swift-crypto cannot
// be fetched offline), OpenSSL's libcrypto through the CLibCrypto system library. Signatures are
// the 64-byte `r || s` the core expects; the public key is SEC1 compressed (33 bytes).
import Foundation
import WeldGuard

#if canImport(CryptoKit)
    import CryptoKit
#elseif canImport(CLibCrypto)
    import CLibCrypto
#endif

/// A person's (and device's) key held in software; `present` is what a biometric prompt would
/// report when a step asks for the person's presence.
final class SoftwareKey: PersonSigner, DeviceKey, @unchecked Sendable {
    private let lock = NSLock()
    private var _present: Bool
    /// What the next presence prompt reports (a test may make the person fail it).
    var present: Bool {
        get { lock.lock(); defer { lock.unlock() }; return _present }
        set { lock.lock(); _present = newValue; lock.unlock() }
    }
    #if canImport(CryptoKit)
        private let key = P256.Signing.PrivateKey()
    #else
        private let key: OpaquePointer
    #endif

    init(present: Bool = false) throws {
        _present = present
        #if !canImport(CryptoKit)
            key = try Self.generate()
        #endif
    }

    #if !canImport(CryptoKit)
        deinit { EVP_PKEY_free(key) }
    #endif

    func publicKey() -> Data {
        #if canImport(CryptoKit)
            return key.publicKey.compressedRepresentation
        #else
            return (try? Self.compressedPublicKey(key)) ?? Data()
        #endif
    }

    func sign(request: SignRequest) throws -> SignedBytes {
        SignedBytes(
            signature: try sign(message: request.message),
            userPresent: present && request.requirePresence)
    }

    func sign(message: Data) throws -> Data {
        #if canImport(CryptoKit)
            return try key.signature(for: message).rawRepresentation
        #else
            return try Self.sign(key, message)
        #endif
    }

    static func failure(_ what: String) -> WeldGuardError {
        .Signing(code: "test.signer", messageZh: "测试密钥失败：\(what)", messageEn: "test key failed: \(what)")
    }

    #if !canImport(CryptoKit)
        private static func generate() throws -> OpaquePointer {
            guard let ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nil) else { throw failure("ctx") }
            defer { EVP_PKEY_CTX_free(ctx) }
            guard EVP_PKEY_keygen_init(ctx) == 1,
                EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1) == 1
            else { throw failure("keygen init") }
            var pkey: OpaquePointer?
            guard EVP_PKEY_keygen(ctx, &pkey) == 1, let made = pkey else { throw failure("keygen") }
            return made
        }

        private static func compressedPublicKey(_ key: OpaquePointer) throws -> Data {
            var buffer = [UInt8](repeating: 0, count: 65)
            var length = 0
            guard
                EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", &buffer, 65, &length) == 1
            else { throw failure("public key") }
            if length == 33 { return Data(buffer[0..<33]) }
            guard length == 65, buffer[0] == 4 else { throw failure("public key form") }
            return Data([2 | (buffer[64] & 1)] + buffer[1...32])
        }

        private static func sign(_ key: OpaquePointer, _ message: Data) throws -> Data {
            guard let md = EVP_MD_CTX_new() else { throw failure("md ctx") }
            defer { EVP_MD_CTX_free(md) }
            guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, key) == 1 else {
                throw failure("sign init")
            }
            var der = [UInt8](repeating: 0, count: 80)
            var derLength = der.count
            let bytes = [UInt8](message)
            guard EVP_DigestSign(md, &der, &derLength, bytes, bytes.count) == 1 else {
                throw failure("sign")
            }
            var cursor: UnsafePointer<UInt8>? = nil
            let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buf in
                cursor = buf.baseAddress
                return d2i_ECDSA_SIG(nil, &cursor, derLength)
            }
            guard let sig = parsed else { throw failure("signature form") }
            defer { ECDSA_SIG_free(sig) }
            var raw = [UInt8](repeating: 0, count: 64)
            guard BN_bn2binpad(ECDSA_SIG_get0_r(sig), &raw, 32) == 32,
                raw.withUnsafeMutableBufferPointer({ buf in
                    BN_bn2binpad(ECDSA_SIG_get0_s(sig), buf.baseAddress! + 32, 32)
                }) == 32
            else { throw failure("signature size") }
            return Data(raw)
        }
    #endif
}
