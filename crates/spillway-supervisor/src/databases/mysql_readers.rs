//! MariaDB readers: read-only replicas fed by GTID replication from the managed primary.
//!
//! - **Seeding.** A reader's first data directory is a copy of the primary's, taken while the
//!   primary is stopped (spillway starts it only afterwards), so the copy is consistent without
//!   `mariadb-backup` (a package Debian does not install with the server). The copy carries the
//!   primary's binary log, so the reader's `gtid_binlog_pos` is where the primary stood; its
//!   first start makes that its `gtid_slave_pos`. A primary that kept no binary log before
//!   starts one now, and the reader replicates it from its beginning.
//! - **Transport.** A MariaDB replica reaches its primary over TCP only (`CHANGE MASTER` takes
//!   no socket), so a primary with readers listens on 127.0.0.1. The replication login exists
//!   only there. So that the port opens no way around the proxies when the stack did not ask
//!   for TCP, every other account a login from 127.0.0.1 could match is locked there (root's
//!   included; see `LOCK_TCP`): the stack's users and root still log in on the socket, not on
//!   the port.
//! - **No passwords in the binary log.** spillway's account statements run with
//!   `sql_log_bin = 0` on the primary and again on each reader, and a reader drops the binary
//!   logs it copied (`RESET MASTER`): the replication login can stream the primary's binlog.
//! - **Identity.** A reader copied from an earlier primary (one whose data directory was
//!   deleted since) is copied anew; a primary created anew removes all readers.
//! - **Every start** points each reader at the primary's current port (it may have changed)
//!   and waits until replication runs; readers start with `--skip-slave-start` for that.

use std::path::Path;

use nix::sys::signal::Signal;

use super::mysql::{Role, STOP_GRACE, Server};
use super::private_dir::make_private;
use super::readers;
use super::sql::my_literal;
use super::{DatabaseEndpoint, check_owner, private_socket_dir, wait_for_stale};
use crate::error::SupervisorError;
use crate::process::{Spec, Supervised, find_program, run};
use crate::state::{admin_password, write_private};

/// The login readers replicate with (on the primary's 127.0.0.1 only).
const REPLICATION_USER: &str = "spillway_replication";
/// The number in a reader's socket-only endpoint (MariaDB clients ignore it on a socket).
pub(super) const SOCKET_ONLY_PORT: u16 = 3306;

/// A random identity the primary's data directory carries (written at its creation), copied
/// into each reader with the rest: a reader whose copy differs was seeded from an earlier
/// primary (its data directory was deleted and created anew) and is copied again.
const ID_FILE: &str = "spillway-primary-id";

/// Writes a new identity into the primary's data directory `data`.
pub(super) fn write_primary_id(primary: &Server<'_>, data: &Path) -> Result<(), SupervisorError> {
    let file = data.join(ID_FILE);
    write_private(&file, &admin_password())?;
    primary.run_as.own(&file)
}

/// The primary's identity; a data directory made before identities were kept gets one now.
fn primary_id(primary: &Server<'_>, data: &Path) -> Result<Vec<u8>, SupervisorError> {
    let file = data.join(ID_FILE);
    match std::fs::read(&file) {
        Ok(id) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_primary_id(primary, data)?;
            std::fs::read(&file).map_err(SupervisorError::io(&file))
        }
        Err(e) => Err(SupervisorError::io(&file)(e)),
    }
}

/// Before the primary starts: drops readers the stack no longer has or that were copied from an
/// earlier primary, and seeds missing ones with a copy of the primary's (stopped) data directory.
pub(super) async fn seed(
    primary: &Server<'_>,
    data: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), SupervisorError> {
    let spec = primary.spec;
    readers::remove_surplus(spec)?;
    if spec.readers == 0 {
        return Ok(());
    }
    let id = primary_id(primary, data)?;
    let cp = find_program("cp", &[]).ok_or(SupervisorError::MissingBinary {
        what: "cp",
        package: "coreutils",
        searched: "PATH".into(),
    })?;
    for index in 1..=spec.readers {
        let dir = readers::dir(spec, index);
        let target = dir.join("data");
        let copied = std::fs::read(target.join(ID_FILE)).ok();
        readers::drop_if_foreign(spec, index, &id, copied.as_deref())?;
        if target.exists() {
            readers::close_data_dir(&target)?;
            continue;
        }
        make_private(&dir, primary.run_as, "mariadbd")?;
        let partial = dir.join("data.partial");
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(SupervisorError::io(&partial))?;
        }
        progress(&format!(
            "databases.{}: copying the primary's data (first start of this reader)...",
            readers::name(&spec.resource, index)
        ));
        // As the server's account, so the copy is its own; renamed only once complete.
        let copy = Spec {
            what: format!(
                "copying databases.{} for {}",
                spec.resource,
                readers::name(&spec.resource, index)
            ),
            program: cp.clone(),
            args: vec![
                "-a".into(),
                "--reflink=auto".into(),
                data.display().to_string(),
                partial.display().to_string(),
            ],
            env: vec![],
            run_as: primary.run_as.clone(),
            log: dir.join("setup.log"),
            stop_signal: Signal::SIGTERM,
            cwd: None,
        };
        run(&copy, None).await?;
        readers::close_data_dir(&partial)?;
        std::fs::rename(&partial, &target).map_err(SupervisorError::io(&target))?;
    }
    Ok(())
}

/// On the running primary, every start, outside the binary log (passwords must not land in
/// it): with readers, the replication login (its password kept in `replication-password`) and,
/// without TCP, the port's locks; with TCP, the locks' removal; without readers, the
/// replication login's removal. Returns the replication password when there are readers.
pub(super) async fn sync_primary(
    primary: &Server<'_>,
    admin: &str,
) -> Result<Option<String>, SupervisorError> {
    let spec = primary.spec;
    // Kept by earlier versions; the locks are now recorded in the server itself.
    let _ = std::fs::remove_file(spec.dir.join("tcp-locked"));
    let mut sql = String::from("SET SESSION sql_log_bin = 0;\n");
    if spec.listens_on_tcp() {
        sql.push_str(LOCKS_TABLE);
        sql.push_str(UNLOCK_TCP);
    }
    let file = spec.dir.join("replication-password");
    let user = my_literal(REPLICATION_USER);
    let password = if spec.readers > 0 {
        let password = match std::fs::read_to_string(&file) {
            Ok(p) => p.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let p = admin_password();
                write_private(&file, &p)?;
                p
            }
            Err(e) => return Err(SupervisorError::io(&file)(e)),
        };
        let pw = my_literal(&password);
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS {user}@'127.0.0.1' IDENTIFIED BY {pw};\n\
             ALTER USER {user}@'127.0.0.1' IDENTIFIED BY {pw} ACCOUNT UNLOCK;\n\
             GRANT REPLICATION SLAVE ON *.* TO {user}@'127.0.0.1';\n"
        ));
        if !spec.listens_on_tcp() {
            sql.push_str(LOCKS_TABLE);
            sql.push_str(LOCK_TCP);
        }
        Some(password)
    } else {
        sql.push_str(&format!("DROP USER IF EXISTS {user}@'127.0.0.1';\n"));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(SupervisorError::io(&file)(e)),
        }
        None
    };
    primary
        .client(
            Some(admin),
            None,
            Some(&sql),
            None,
            "setting up replication",
        )
        .await?;
    Ok(password)
}

/// What spillway locked on 127.0.0.1 (`twin`: an account it created there, dropped again on
/// unlock; else an account that was there, unlocked again), so that `tcp = true` undoes
/// exactly that. In the `mysql` schema, which only the administrative login reads, and only
/// while something is locked.
const LOCKS_TABLE: &str = "CREATE TABLE IF NOT EXISTS mysql.spillway_tcp_locks (
  User CHAR(128) COLLATE utf8mb3_bin NOT NULL,
  Host CHAR(255) COLLATE utf8mb3_bin NOT NULL,
  twin BOOL NOT NULL,
  PRIMARY KEY (User, Host)
) ENGINE = Aria;
";

/// Without TCP the port is the readers' only: every account a TCP login from 127.0.0.1 could
/// match is locked, except the replication login. A user with a matching host pattern ('%',
/// '127.%', a netmask, anonymous '') and no `127.0.0.1` account gets a locked one there (the
/// most specific host wins); `127.0.0.1` accounts (root's among them) are locked as they are.
/// `'localhost'` accounts are socket-only under `--skip-name-resolve`.
const LOCK_TCP: &str = "DELIMITER //
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE u VARCHAR(128);
  DECLARE c CURSOR FOR SELECT DISTINCT p.User FROM mysql.global_priv p
    WHERE p.User <> 'spillway_replication'
      AND IFNULL(JSON_VALUE(p.Priv, '$.is_role'), 'false') <> 'true'
      AND (p.Host = '' OR '127.0.0.1' LIKE p.Host
        OR (p.Host LIKE '%/%' AND INET_ATON('127.0.0.1') & INET_ATON(SUBSTRING_INDEX(p.Host, '/', -1))
            = INET_ATON(SUBSTRING_INDEX(p.Host, '/', 1))))
      AND NOT EXISTS
        (SELECT 1 FROM mysql.global_priv q WHERE q.User = p.User AND q.Host = '127.0.0.1');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO u;
    IF done THEN LEAVE l; END IF;
    EXECUTE IMMEDIATE CONCAT('CREATE USER ', QUOTE(u), '@''127.0.0.1'' ACCOUNT LOCK');
    INSERT IGNORE INTO mysql.spillway_tcp_locks VALUES (u, '127.0.0.1', TRUE);
  END LOOP;
  CLOSE c;
END //
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE u VARCHAR(128);
  DECLARE c CURSOR FOR SELECT p.User FROM mysql.global_priv p
    WHERE p.Host = '127.0.0.1' AND p.User <> 'spillway_replication'
      AND IFNULL(JSON_VALUE(p.Priv, '$.account_locked'), 'false') <> 'true';
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO u;
    IF done THEN LEAVE l; END IF;
    EXECUTE IMMEDIATE CONCAT('ALTER USER ', QUOTE(u), '@''127.0.0.1'' ACCOUNT LOCK');
    INSERT IGNORE INTO mysql.spillway_tcp_locks VALUES (u, '127.0.0.1', FALSE);
  END LOOP;
  CLOSE c;
END //
DELIMITER ;
";

/// The stack asked for TCP: what `LOCK_TCP` locked is undone, and so are the locked
/// `127.0.0.1` twins of `'%'` accounts that versions before the table made.
const UNLOCK_TCP: &str = "DELIMITER //
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE u VARCHAR(128);
  DECLARE h VARCHAR(255);
  DECLARE t BOOL;
  DECLARE c CURSOR FOR SELECT User, Host, twin FROM mysql.spillway_tcp_locks;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO u, h, t;
    IF done THEN LEAVE l; END IF;
    IF t THEN
      EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS ', QUOTE(u), '@', QUOTE(h));
    ELSE
      EXECUTE IMMEDIATE CONCAT('ALTER USER IF EXISTS ', QUOTE(u), '@', QUOTE(h), ' ACCOUNT UNLOCK');
    END IF;
  END LOOP;
  CLOSE c;
  DROP TABLE mysql.spillway_tcp_locks;
END //
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE u VARCHAR(128);
  DECLARE c CURSOR FOR SELECT p.User FROM mysql.global_priv p
    WHERE p.Host = '127.0.0.1' AND p.User NOT IN ('root', 'spillway_replication')
      AND JSON_VALUE(p.Priv, '$.account_locked') = 'true'
      AND EXISTS (SELECT 1 FROM mysql.global_priv q WHERE q.User = p.User AND q.Host = '%');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO u;
    IF done THEN LEAVE l; END IF;
    EXECUTE IMMEDIATE CONCAT('DROP USER ', QUOTE(u), '@''127.0.0.1''');
  END LOOP;
  CLOSE c;
END //
DELIMITER ;
";

/// Starts every reader of the running `primary`; on failure stops those already started.
pub(super) async fn start_all(
    primary: &Server<'_>,
    endpoint: &DatabaseEndpoint,
    admin: &str,
    replication: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(DatabaseEndpoint, Supervised)>, SupervisorError> {
    let mut started: Vec<(DatabaseEndpoint, Supervised)> = Vec::new();
    for index in 1..=primary.spec.readers {
        match start_one(primary, endpoint, index, admin, replication, progress).await {
            Ok(r) => started.push(r),
            Err(e) => {
                for (_, p) in started.into_iter().rev() {
                    p.stop(STOP_GRACE).await;
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

async fn start_one(
    primary: &Server<'_>,
    endpoint: &DatabaseEndpoint,
    index: u32,
    admin: &str,
    replication: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(DatabaseEndpoint, Supervised), SupervisorError> {
    let spec = primary.spec;
    let dir = readers::dir(spec, index);
    let sockets = private_socket_dir(&dir, "mysqld.sock.lock", primary.run_as, "mariadbd")?;
    let server = Server {
        socket: sockets.join("mysqld.sock"),
        log: dir.join("mariadbd.log"),
        dir: dir.clone(),
        role: Role::Reader { index },
        ..*primary
    };
    let data = dir.join("data");
    check_owner(&data, primary.run_as.uid, "mariadbd")?;
    wait_for_stale(&dir.join("mariadbd.pid"), &server.label()).await?;
    let first = !data.join("master.info").exists();
    let mut process = server.spawn(&data)?;
    let setup = async {
        server.wait_ready(&mut process).await?;
        // The logins are kept out of the primary's binary log, so they do not replicate: each
        // reader gets them from the secrets, as the primary does.
        server.sync_users(admin).await?;
        let mut sql = String::new();
        if first {
            progress(&format!("{}: starting replication", server.label()));
            sql.push_str("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos;\n");
        }
        // The binary logs in a reader are the primary's, copied with its data (passwords an
        // earlier version logged among them), and later only its own, which nothing reads
        // (log_slave_updates is off): they go once the position is read.
        sql.push_str("RESET MASTER;\n");
        sql.push_str(&format!(
            "STOP SLAVE;\n\
             CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = {}, \
             MASTER_PASSWORD = {}, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, \
             MASTER_HEARTBEAT_PERIOD = 1;\n\
             SET @spillway_from = @@global.gtid_slave_pos;\n\
             START SLAVE;\n{WAIT_REPLICATING}",
            primary.port,
            my_literal(REPLICATION_USER),
            my_literal(replication),
        ));
        server
            .client(Some(admin), None, Some(&sql), None, "starting replication")
            .await
    }
    .await;
    if let Err(e) = setup {
        process.stop(STOP_GRACE).await;
        return Err(e);
    }
    let reader = readers::endpoint(
        endpoint,
        index,
        "localhost".into(),
        SOCKET_ONLY_PORT,
        &server.socket,
        server.log.clone(),
    );
    Ok((reader, process))
}

/// Waits (at most 60 s, in SQL so it is one client run) until the reader follows the primary:
/// its threads run (`Slave_running` is ON only while the I/O thread is connected) and the
/// primary has accepted its position, shown by a heartbeat or an applied transaction. A
/// connection alone is not enough: a primary that lacks the position (error 1236) refuses it
/// only after the connection.
const WAIT_REPLICATING: &str = "DELIMITER //
BEGIN NOT ATOMIC
  DECLARE i INT DEFAULT 0;
  DECLARE ok INT DEFAULT 0;
  WHILE i < 600 AND ok = 0 DO
    SET ok = (SELECT COUNT(*) FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'SLAVE_RUNNING' AND VARIABLE_VALUE = 'ON')
      AND ((SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
          WHERE VARIABLE_NAME = 'SLAVE_RECEIVED_HEARTBEATS') > 0
        OR @@global.gtid_slave_pos <> @spillway_from);
    IF ok = 0 THEN
      DO SLEEP(0.1);
    END IF;
    SET i = i + 1;
  END WHILE;
  IF ok = 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT =
      'replication did not start within 60s; SHOW SLAVE STATUS on the reader says why (Last_IO_Errno 1236: the primary lacks its position; stop the stack and delete the reader''s directory to copy the primary again)';
  END IF;
END //
DELIMITER ;
";
