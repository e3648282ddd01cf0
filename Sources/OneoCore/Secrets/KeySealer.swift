public import OneoWire
public import Foundation
import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// Seals tenants' provider keys with AES-GCM under the instance's master key. Only the supervisor
/// (and the operator CLI, which writes keys) ever hold the master key; the database holds only
/// sealed boxes, bound to their tenant so a box cannot be moved to another tenant's row.
public struct KeySealer: Sendable {
    /// Raw bytes rather than `SymmetricKey`, which is not `Sendable`.
    private let keyBytes: Data

    /// Loads the master key file, creating it with mode 0600 when it does not exist yet.
    public init(masterKeyFile path: String) throws(SecretError) {
        let manager = FileManager.default
        if !manager.fileExists(atPath: path) {
            let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
            let directory = (path as NSString).deletingLastPathComponent
            do {
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw SecretError(.masterKeyUnreadable, detail: "cannot create \(directory)")
            }
            try Self.createPrivately(path, fresh)
        }
        guard let data = manager.contents(atPath: path) else {
            throw SecretError(.masterKeyUnreadable, detail: "cannot read \(path)")
        }
        guard data.count == 32 else {
            throw SecretError(.masterKeyUnreadable, detail: "\(path) must hold exactly 32 bytes, it holds \(data.count)")
        }
        if let mode = (try? manager.attributesOfItem(atPath: path))?[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw SecretError(.masterKeyUnreadable, detail: "\(path) is readable by group or others (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        self.keyBytes = data
    }

    /// Puts a new key at `path` that is 0600 from its first byte and whole when it appears: it is
    /// written to a private temporary file (`O_CREAT|O_EXCL`, mode 0600; Foundation's
    /// `createFile` writes, then chmods), synced, then linked into place. When another process
    /// (`serve` and `tenant add` started together) linked its key first, that key stands and
    /// ours is dropped: both then read the same one.
    private static func createPrivately(_ path: String, _ data: Data) throws(SecretError) {
        let temporary = "\(path).\(getpid()).\(UInt32.random(in: 0 ... .max)).tmp"
        let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw SecretError(.masterKeyUnreadable, detail: "cannot create \(temporary) (errno \(errno))") }
        defer { unlink(temporary) }
        let written = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        Glibc.close(descriptor)
        guard written == data.count, synced else { throw SecretError(.masterKeyUnreadable, detail: "cannot write \(temporary) (errno \(errno))") }
        guard link(temporary, path) == 0 || errno == EEXIST else {
            throw SecretError(.masterKeyUnreadable, detail: "cannot put the key at \(path) (errno \(errno))")
        }
        // The directory entry itself, so the key survives a crash right after.
        let directory = Glibc.open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            Glibc.close(directory)
        }
    }

    /// What a sealed key is bound to: its tenant, or the operator's fallback and the one base URL
    /// it may be sent to. A blob sealed for one never opens as the other.
    public enum Binding: Sendable, Hashable {
        case tenant(TenantID)
        case operatorFallback(baseURL: String)

        var context: Data {
            switch self {
            case .tenant(let tenant): Data("oneo-ai provider key, tenant \(tenant)".utf8)
            case .operatorFallback(let url): Data("oneo-ai operator fallback key v1, for \(url)".utf8)
            }
        }
    }

    /// A secret for one purpose (a Redis ACL user's password), derived from the master key:
    /// HMAC-SHA256 under a subkey of its own (HKDF), never the key that seals provider keys.
    /// Stable across restarts, different per purpose, and telling nothing of the master key.
    public func derivedSecret(purpose: String) -> String {
        let subkey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: self.keyBytes), info: Data("oneo-ai derived secrets v1".utf8), outputByteCount: 32
        )
        let mac = HMAC<SHA256>.authenticationCode(for: Data(purpose.utf8), using: subkey)
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// How Redis stores a password (`#<sha256 hex>` in an ACL rule): what we apply and print, so
    /// the password itself is never in a command line, a shell history or a file.
    public static func redisPasswordHash(_ password: String) -> String {
        SHA256.hash(data: Data(password.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public func seal(_ providerKey: ProviderKey, tenant: TenantID) throws(SecretError) -> Data {
        try self.seal(providerKey, for: .tenant(tenant))
    }

    public func open(_ sealed: Data, tenant: TenantID) throws(SecretError) -> ProviderKey {
        try self.open(sealed, for: .tenant(tenant))
    }

    public func seal(_ providerKey: ProviderKey, for binding: Binding) throws(SecretError) -> Data {
        do {
            let box = try AES.GCM.seal(Data(providerKey.secret.utf8), using: SymmetricKey(data: self.keyBytes), authenticating: binding.context)
            guard let combined = box.combined else { throw SecretError(.sealFailed, detail: "no combined form") }
            return combined
        } catch let error as SecretError {
            throw error
        } catch {
            throw SecretError(.sealFailed, detail: "AES-GCM seal failed")
        }
    }

    public func open(_ sealed: Data, for binding: Binding) throws(SecretError) -> ProviderKey {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: SymmetricKey(data: self.keyBytes), authenticating: binding.context)
            return ProviderKey(String(decoding: plain, as: UTF8.self))
        } catch {
            let whose = switch binding {
            case .tenant(let tenant): "tenant \(tenant)"
            case .operatorFallback: "the operator's key"
            }
            throw SecretError(.openFailed, detail: "\(whose): wrong master key or tampered sealed key")
        }
    }
}

/// A failure to load the master key or to seal or open a provider key. Never holds key material.
public struct SecretError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable { case masterKeyUnreadable, sealFailed, openFailed }

    public let code: Code
    public let detail: String

    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { self.detail }
}
