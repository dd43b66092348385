//! Numbers of the MySQL client/server protocol: capability flags, status flags, commands,
//! packet headers and the error codes the proxy sends itself.
//! <https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html>

pub mod cap {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const LOCAL_FILES: u32 = 1 << 7;
    pub const IGNORE_SPACE: u32 = 1 << 8;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    pub const SESSION_TRACK: u32 = 1 << 23;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What the proxy offers clients (SSL is added when the listener has a certificate).
    /// Deliberately absent: COMPRESS, QUERY_ATTRIBUTES (it changes COM_QUERY's layout),
    /// OPTIONAL_RESULTSET_METADATA, LOCAL_FILES (added only where the stack allows it), and
    /// MariaDB's extended capabilities (cached metadata and bulk operations change result
    /// formats): a client that cannot have them falls back to the plain protocol.
    pub const OFFERED: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | IGNORE_SPACE
        | PROTOCOL_41
        | INTERACTIVE
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | SESSION_TRACK
        | DEPRECATE_EOF;

    /// Client options a server connection is fixed to at login, that change what a client
    /// sees, and so part of a pool's key (see `PoolKey::options`).
    pub const POOLED_OPTIONS: u32 = FOUND_ROWS | IGNORE_SPACE | MULTI_STATEMENTS | LOCAL_FILES;

    /// What the proxy asks of every server connection, besides the pooled options. Session
    /// tracking and DEPRECATE_EOF let the server tell the proxy what a statement changed, in
    /// every OK packet, a result set's last one included.
    pub const TO_SERVER: u32 = LONG_PASSWORD
        | LONG_FLAG
        | PROTOCOL_41
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | PLUGIN_AUTH_LENENC_CLIENT_DATA
        | CONNECT_ATTRS
        | SESSION_TRACK
        | DEPRECATE_EOF;
}

pub mod status {
    pub const IN_TRANS: u16 = 1;
    pub const AUTOCOMMIT: u16 = 1 << 1;
    pub const MORE_RESULTS_EXISTS: u16 = 1 << 3;
    pub const CURSOR_EXISTS: u16 = 1 << 6;
    pub const LAST_ROW_SENT: u16 = 1 << 7;
    pub const IN_TRANS_READONLY: u16 = 1 << 13;
    pub const SESSION_STATE_CHANGED: u16 = 1 << 14;
}

pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// First bytes of a response packet.
pub const OK: u8 = 0x00;
pub const EOF: u8 = 0xfe;
pub const ERR: u8 = 0xff;
pub const LOCAL_INFILE: u8 = 0xfb;
pub const AUTH_SWITCH: u8 = 0xfe;
pub const AUTH_MORE_DATA: u8 = 0x01;

/// Session state tracker entry types (in an OK packet with SESSION_STATE_CHANGED).
pub mod track {
    pub const SYSTEM_VARIABLES: u8 = 0;
    pub const SCHEMA: u8 = 1;
    pub const STATE_CHANGE: u8 = 2;
}

/// Error codes the proxy sends on its own account, with their SQLSTATEs.
pub mod error {
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    pub const DB_ACCESS_DENIED: (u16, &str) = (1044, "42000");
    pub const TOO_MANY_CONNECTIONS: (u16, &str) = (1040, "08004");
    pub const HANDSHAKE: (u16, &str) = (1043, "08S01");
    pub const UNKNOWN_COM: (u16, &str) = (1047, "08S01");
    pub const NET_PACKET_TOO_LARGE: (u16, &str) = (1153, "08S01");
    pub const NET_READ: (u16, &str) = (1158, "08S01");
    pub const UNKNOWN_ERROR: (u16, &str) = (1105, "HY000");
    pub const UNKNOWN_STMT_HANDLER: (u16, &str) = (1243, "HY000");
    pub const NOT_ALLOWED_COMMAND: (u16, &str) = (1148, "42000");
    pub const UNKNOWN_THREAD: (u16, &str) = (1094, "HY000");
    pub const SECURE_TRANSPORT_REQUIRED: (u16, &str) = (3159, "HY000");
    /// RDS Proxy's own code for a borrow timeout.
    pub const BORROW_TIMEOUT: (u16, &str) = (9501, "HY000");
}

/// utf8mb4_general_ci: the proxy's greeting names it; clients name their own in their answer.
pub const DEFAULT_COLLATION: u8 = 45;

/// The largest payload of one packet; longer messages are split into parts of this size.
pub const MAX_PART: usize = 0xff_ffff;
