//! `segexpand serve`: the PostgreSQL wire-protocol server on a data directory (created
//! when missing), until SIGINT or SIGTERM; then sessions roll back, a checkpoint is
//! taken and the directory lock is released.

use segexpand_engine::vfs::RealVfs;
use segexpand_engine::{inspect, DirState, Node, NodeOptions};
use segexpand_server::ServerOptions;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `segexpand serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The data directory (created with --segments segments when missing or empty).
    #[arg(long, default_value = crate::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: String,
    /// Port to listen on (0: any free port; the ready line says which).
    #[arg(long, default_value_t = 5432)]
    pub port: u16,
    /// Segments of a new node (ignored when the directory holds one).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub segments: u16,
    /// Most client connections at once; more are refused (SQLSTATE 53300).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub max_connections: u64,
    /// A password every client must prove it knows (SCRAM-SHA-256); default: trust.
    #[arg(long, value_parser = non_empty_password)]
    pub password: Option<String>,
}

/// An empty password is refused rather than served (PostgreSQL treats one as none).
fn non_empty_password(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("the password must not be empty (leave --password out for trust)".into())
    } else {
        Ok(s.to_string())
    }
}

fn open(a: &ServeArgs) -> Result<std::sync::Arc<Node>, segexpand_engine::Error> {
    match inspect(&RealVfs, &a.dir)? {
        DirState::Missing | DirState::Empty => {
            Node::create_dir(&a.dir, a.segments, NodeOptions::default())
        }
        _ => Node::open_dir(&a.dir, NodeOptions::default()),
    }
}

/// Runs the server; the exit code.
pub fn run(a: &ServeArgs) -> ExitCode {
    let node = match open(a) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("segexpand serve: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = ServerOptions {
        listen: a.listen.clone(),
        port: a.port,
        max_connections: usize::try_from(a.max_connections).unwrap_or(usize::MAX),
        password: a.password.clone(),
    };
    let segments = node.segments().len();
    let served = segexpand_server::run(node.clone(), &opts, |addr| {
        println!(
            "segexpand serve: listening on {addr} ({} with {segments} segments)",
            a.dir.display()
        );
        println!("segexpand serve: ready to accept connections");
    });
    if let Err(e) = served {
        eprintln!("segexpand serve: {e}");
        let _ = node.close();
        return ExitCode::from(2);
    }
    match node.close() {
        Ok(()) => {
            println!("segexpand serve: shut down cleanly (checkpoint taken)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("segexpand serve: closing the node: {e}");
            ExitCode::from(1)
        }
    }
}
