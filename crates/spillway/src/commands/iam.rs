//! `spillway iam simulate`: the same policy evaluation the endpoint and the proxies run, on the
//! stack file, with the deciding statement named.

use spillway_identity::policy::{self, Decision, Request};

use super::{EXIT_INPUT, EXIT_RUNTIME, print_load_error};
use crate::cli::SimulateArgs;

pub fn simulate(args: &SimulateArgs) -> u8 {
    let loaded = match spillway_stack::load(&args.stack) {
        Ok(l) => l,
        Err(e) => {
            print_load_error(&e);
            return EXIT_INPUT;
        }
    };
    let session = match &args.session_policy {
        None => None,
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: {path}: {e}");
                        return EXIT_INPUT;
                    }
                },
                None => text.clone(),
            };
            match policy::parse_document(&text) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("error: --session-policy: {e}");
                    return EXIT_INPUT;
                }
            }
        }
    };
    let (arn, policies) =
        match spillway_supervisor::identity::principal_policies(&loaded, &args.principal) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INPUT;
            }
        };
    let mut request = Request::new(
        &args.action,
        &args.resource,
        &arn,
        spillway_identity::time::now(),
    );
    for kv in &args.context {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("error: --context {kv:?}: expected KEY=VALUE");
            return EXIT_INPUT;
        };
        request = request.with(k, v);
    }
    match policy::evaluate(&policies, session.as_ref(), &request) {
        Decision::Allow { statement } => {
            println!(
                "allowed: {arn} may {} on {} ({statement})",
                args.action, args.resource
            );
            0
        }
        Decision::ExplicitDeny { statement } => {
            println!("denied: explicitly, by {statement}");
            EXIT_RUNTIME
        }
        Decision::ImplicitDeny => {
            println!(
                "denied: no statement allows {} on {}{}",
                args.action,
                args.resource,
                if session.is_some() {
                    " (in both the identity and the session policies)"
                } else {
                    ""
                }
            );
            EXIT_RUNTIME
        }
    }
}
