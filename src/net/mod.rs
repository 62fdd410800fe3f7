//! Sockets, NetworkStream and send file, on the engine.

pub mod network_stream;
pub mod send_file;
pub mod socket;
mod sync_op;
pub mod sys;

/// .NET's AddressFamily values.
pub mod address_family {
    pub(crate) const INTER_NETWORK: i32 = 2;
    pub(crate) const INTER_NETWORK_V6: i32 = 23;
}

/// .NET's SocketType values.
pub mod socket_type {
    pub(crate) const STREAM: i32 = 1;
    pub(crate) const DGRAM: i32 = 2;
}

/// .NET's ProtocolType values.
pub mod protocol_type {
    pub(crate) const UNSPECIFIED: i32 = 0;
    pub(crate) const TCP: i32 = 6;
}

/// .NET's SocketShutdown values.
pub mod socket_shutdown {
    pub(crate) const RECEIVE: i32 = 0;
    pub(crate) const SEND: i32 = 1;
    pub(crate) const BOTH: i32 = 2;
}

/// .NET's TransmitFileOptions flags.
pub mod transmit_file_options {
    pub(crate) const DISCONNECT: i32 = 0x01;
    pub(crate) const REUSE_SOCKET: i32 = 0x02;
    pub(crate) const WRITE_BEHIND: i32 = 0x04;
    pub(crate) const USE_SYSTEM_THREAD: i32 = 0x10;
    pub(crate) const USE_KERNEL_APC: i32 = 0x20;
    pub(crate) const ALL: i32 = DISCONNECT | REUSE_SOCKET | WRITE_BEHIND | USE_SYSTEM_THREAD | USE_KERNEL_APC;
}

/// .NET's FileAccess values (the NetworkStream's access).
pub mod file_access {
    pub(crate) const READ: i32 = 1;
    pub(crate) const WRITE: i32 = 2;
    pub(crate) const READ_WRITE: i32 = 3;
}
