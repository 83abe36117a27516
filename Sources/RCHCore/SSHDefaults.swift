/// What the lane asks of `ssh` whatever the worker.
public enum SSHDefaults {
    /// The cipher preference: AES-GCM first (`^` puts it at the head of ssh's default list, which stays as the
    /// fallback). OpenSSH's `chacha20-poly1305`, its default, is OpenSSH's own portable C; AES-GCM goes through
    /// libcrypto on the CPU's AES instructions (AES-NI, Apple silicon), and a first push moves its whole bundle
    /// through ssh and sshd (on the 2-core test VM: ≈ 75 ms less for 89 MB). Given after an inventory's
    /// `ssh_options`, so a `Ciphers` there wins (ssh keeps the first value it gets for an option).
    public static let cipherOptions = ["-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com"]
}
