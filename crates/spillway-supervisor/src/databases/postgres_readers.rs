//! PostgreSQL readers: hot standbys fed by streaming replication from the managed primary.
//!
//! - **Seeding.** `pg_basebackup -R -X stream` from the running primary over its Unix socket
//!   (initdb's `pg_hba.conf` lets the superuser replicate there), into `data.partial/`,
//!   renamed when complete.
//! - **The connection.** The password lives in a `pgpass` file of the reader's (0600), named
//!   by `passfile` in the connection string, so it is in no command line. Each start passes
//!   `primary_conninfo` on the command line (which outranks the `postgresql.auto.conf` that
//!   `-R` wrote), so a primary whose port changed is still found.
//! - **Identity.** A reader whose `system_identifier` is not its primary's (the primary's data
//!   directory was deleted and made anew) is copied again; a primary created anew removes all
//!   readers.
//! - **Every start** waits until the standby streams from the primary.

use std::path::Path;

use nix::sys::signal::Signal;

use super::postgres::{ADMIN_USER, PsqlInput, Role, STOP_GRACE, Server};
use super::private_dir::make_private;
use super::readers;
use super::{DatabaseEndpoint, check_owner, private_socket_dir, wait_for_stale};
use crate::error::SupervisorError;
use crate::process::{Spec, Supervised, run};
use crate::state::write_private;

/// The number in a reader's socket name (`.s.PGSQL.5432` in its own directory).
const SOCKET_PORT: u16 = 5432;

/// Starts every reader of the running `primary` (seeding new ones first); on failure stops
/// those already started.
pub(super) async fn start_all(
    primary: &Server<'_>,
    endpoint: &DatabaseEndpoint,
    admin: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(DatabaseEndpoint, Supervised)>, SupervisorError> {
    let mut started: Vec<(DatabaseEndpoint, Supervised)> = Vec::new();
    for index in 1..=primary.spec.readers {
        match start_one(primary, endpoint, index, admin, progress).await {
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

/// A libpq connection-string value, quoted.
fn conninfo_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A pgpass field (`:` and `\` escaped).
fn pgpass_field(v: &str) -> String {
    v.replace('\\', "\\\\").replace(':', "\\:")
}

async fn start_one(
    primary: &Server<'_>,
    endpoint: &DatabaseEndpoint,
    index: u32,
    admin: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(DatabaseEndpoint, Supervised), SupervisorError> {
    let spec = primary.spec;
    let name = readers::name(&spec.resource, index);
    let dir = readers::dir(spec, index);
    make_private(&dir, primary.run_as, "postgres")?;
    primary.run_as.check_reachable(&dir)?;
    let passfile = dir.join("pgpass");
    write_private(
        &passfile,
        &format!(
            "*:*:*:{}:{}\n",
            pgpass_field(ADMIN_USER),
            pgpass_field(admin)
        ),
    )?;
    primary.run_as.own(&passfile)?;
    let conninfo = format!(
        "host={} port={} user={} passfile={} application_name={}",
        conninfo_value(&primary.sockets.display().to_string()),
        primary.port,
        conninfo_value(ADMIN_USER),
        conninfo_value(&passfile.display().to_string()),
        conninfo_value(&name),
    );
    let data = dir.join("data");
    check_owner(&data, primary.run_as.uid, "postgres")?;
    if data.exists() {
        let primary_id = system_identifier(&primary.dir.join("data"))?;
        readers::drop_if_foreign(
            spec,
            index,
            &primary_id,
            system_identifier(&data).ok().as_deref(),
        )?;
    }
    if !data.exists() {
        seed(primary, &dir, &conninfo, &name, progress).await?;
    }
    let sockets = private_socket_dir(&dir, ".s.PGSQL.65535.lock", primary.run_as, "postgres")?;
    let server = Server {
        sockets: sockets.clone(),
        log: dir.join("postgres.log"),
        dir: dir.clone(),
        role: Role::Reader { index },
        settings: vec![format!("primary_conninfo={conninfo}")],
        port: SOCKET_PORT,
        ..*primary
    };
    wait_for_stale(&data.join("postmaster.pid"), &server.label()).await?;
    let mut process = server.spawn(&data)?;
    let setup = async {
        server.wait_ready(&data, &mut process).await?;
        server
            .psql(
                admin,
                "postgres",
                PsqlInput::Sql("waiting for replication", WAIT_STREAMING),
            )
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
        sockets.display().to_string(),
        SOCKET_PORT,
        &sockets,
        server.log.clone(),
    );
    Ok((reader, process))
}

/// The cluster's `system_identifier`: the first 8 bytes of `global/pg_control` (the field
/// `ControlFileData` starts with), set by initdb and kept by `pg_basebackup`. A standby whose
/// identifier differs from its primary's was copied from another cluster and can never stream
/// from this one.
fn system_identifier(data: &Path) -> Result<Vec<u8>, SupervisorError> {
    let file = data.join("global").join("pg_control");
    let bytes = std::fs::read(&file).map_err(SupervisorError::io(&file))?;
    Ok(bytes.get(..8).unwrap_or(&bytes).to_vec())
}

/// `pg_basebackup -R` from the running primary into the reader's `data.partial/`.
async fn seed(
    primary: &Server<'_>,
    dir: &Path,
    conninfo: &str,
    name: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), SupervisorError> {
    let partial = dir.join("data.partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(SupervisorError::io(&partial))?;
    }
    progress(&format!(
        "databases.{name}: copying the primary with pg_basebackup (first start of this reader)..."
    ));
    let backup = Spec {
        what: format!("pg_basebackup for databases.{name}"),
        program: primary.bins.beside_server("pg_basebackup"),
        args: vec![
            "-D".into(),
            partial.display().to_string(),
            "-d".into(),
            conninfo.to_owned(),
            "-R".into(),
            "-X".into(),
            "stream".into(),
            "-c".into(),
            "fast".into(),
            "--no-password".into(),
        ],
        env: vec![("LC_ALL".into(), "C".into())],
        run_as: primary.run_as.clone(),
        log: dir.join("setup.log"),
        stop_signal: Signal::SIGTERM,
        cwd: Some(dir.to_path_buf()),
    };
    run(&backup, None).await?;
    let data = dir.join("data");
    std::fs::rename(&partial, &data).map_err(SupervisorError::io(&data))
}

/// Waits (at most 60 s, in one psql run) until the standby's WAL receiver streams.
const WAIT_STREAMING: &str = "DO $spillway$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming');
    PERFORM pg_sleep(0.1);
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN
    RAISE EXCEPTION 'replication did not start within 60s (the reader''s and the primary''s logs say why)';
  END IF;
END
$spillway$;
";
