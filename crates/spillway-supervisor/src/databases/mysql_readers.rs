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
//!   for TCP, every other `'%'` account gets a locked twin at `127.0.0.1` (the more specific
//!   host wins): the stack's users still log in on the socket, not on the port.
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
const SOCKET_ONLY_PORT: u16 = 3306;

/// Before the primary starts: drops readers the stack no longer has and seeds missing ones with
/// a copy of the primary's (stopped) data directory.
pub(super) async fn seed(
    primary: &Server<'_>,
    data: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), SupervisorError> {
    let spec = primary.spec;
    readers::remove_surplus(spec)?;
    let cp = find_program("cp", &[]).ok_or(SupervisorError::MissingBinary {
        what: "cp",
        package: "coreutils",
        searched: "PATH".into(),
    })?;
    for index in 1..=spec.readers {
        let dir = readers::dir(spec, index);
        if dir.join("data").exists() {
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
        let target = dir.join("data");
        std::fs::rename(&partial, &target).map_err(SupervisorError::io(&target))?;
    }
    Ok(())
}

/// On the running primary, every start: with readers, the replication login (its password kept
/// in `replication-password`) and the port's locked twins; without, the twins' removal if the
/// port is the stack's own now. Returns the replication password when there are readers.
pub(super) async fn sync_primary(
    primary: &Server<'_>,
    admin: &str,
) -> Result<Option<String>, SupervisorError> {
    let spec = primary.spec;
    let marker = spec.dir.join("tcp-locked");
    let mut sql = String::new();
    if spec.listens_on_tcp() && marker.exists() {
        sql.push_str(UNLOCK_TCP);
    }
    let password = if spec.readers > 0 {
        let file = spec.dir.join("replication-password");
        let password = match std::fs::read_to_string(&file) {
            Ok(p) => p.trim().to_owned(),
            Err(_) => {
                let p = admin_password();
                write_private(&file, &p)?;
                p
            }
        };
        let (user, pw) = (my_literal(REPLICATION_USER), my_literal(&password));
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS {user}@'127.0.0.1' IDENTIFIED BY {pw};\n\
             ALTER USER {user}@'127.0.0.1' IDENTIFIED BY {pw};\n\
             GRANT REPLICATION SLAVE ON *.* TO {user}@'127.0.0.1';\n"
        ));
        if !spec.listens_on_tcp() {
            sql.push_str(LOCK_TCP);
        }
        Some(password)
    } else {
        None
    };
    if sql.is_empty() {
        return Ok(password);
    }
    primary
        .client(
            Some(admin),
            None,
            Some(&sql),
            None,
            "setting up replication",
        )
        .await?;
    if spec.listens_on_tcp() {
        let _ = std::fs::remove_file(&marker);
    } else if spec.readers > 0 {
        std::fs::write(&marker, "accounts on 127.0.0.1 locked for replication\n")
            .map_err(SupervisorError::io(&marker))?;
    }
    Ok(password)
}

/// Every `'%'` account without a `127.0.0.1` one gets a locked one there.
const LOCK_TCP: &str = "DELIMITER //
BEGIN NOT ATOMIC
  DECLARE done INT DEFAULT 0;
  DECLARE u VARCHAR(128);
  DECLARE c CURSOR FOR SELECT p.User FROM mysql.global_priv p
    WHERE p.Host = '%' AND p.User <> '' AND NOT EXISTS
      (SELECT 1 FROM mysql.global_priv q WHERE q.User = p.User AND q.Host = '127.0.0.1');
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN c;
  l: LOOP
    FETCH c INTO u;
    IF done THEN LEAVE l; END IF;
    EXECUTE IMMEDIATE CONCAT('CREATE USER ', QUOTE(u), '@''127.0.0.1'' ACCOUNT LOCK');
  END LOOP;
  CLOSE c;
END //
DELIMITER ;
";

/// The locked `127.0.0.1` twins of `'%'` accounts go (the stack asked for TCP).
const UNLOCK_TCP: &str = "DELIMITER //
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
        let mut sql = String::new();
        if first {
            progress(&format!("{}: starting replication", server.label()));
            sql.push_str("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos;\n");
        }
        sql.push_str(&format!(
            "STOP SLAVE;\n\
             CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = {}, \
             MASTER_PASSWORD = {}, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;\n\
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

/// Waits (at most 60 s, in SQL so it is one client run) until the reader's replication threads
/// run and it is connected to the primary; fails with a message pointing at the cause.
const WAIT_REPLICATING: &str = "DELIMITER //
BEGIN NOT ATOMIC
  DECLARE i INT DEFAULT 0;
  WHILE i < 600 AND (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
      WHERE VARIABLE_NAME = 'SLAVE_RUNNING') <> 'ON' DO
    DO SLEEP(0.1);
    SET i = i + 1;
  END WHILE;
  IF (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
      WHERE VARIABLE_NAME = 'SLAVE_RUNNING') <> 'ON' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT =
      'replication did not start within 60s (SHOW SLAVE STATUS on the reader, and the primary''s log, say why)';
  END IF;
END //
DELIMITER ;
";
