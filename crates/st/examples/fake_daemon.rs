//! An impostor for `tests/security/impersonation.sh`: binds a daemon's TCP port while the
//! daemon is down, records every byte and request it receives, and answers as a daemon would
//! (its stats name the pid it is given). See `tests/support/fake_daemon.rs`.
//!
//! ```text
//! fake_daemon PORT DIR PID    (runs until killed; DIR/bytes, DIR/messages; prints "listening")
//! ```

#[path = "../tests/support/fake_daemon.rs"]
mod fake_daemon;

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, dir, pid] = &args[..] else {
        eprintln!("usage: fake_daemon PORT DIR PID");
        std::process::exit(2);
    };
    let (Ok(port), Ok(pid)) = (port.parse::<u16>(), pid.parse::<u32>()) else {
        eprintln!("fake_daemon: PORT and PID are numbers");
        std::process::exit(2);
    };
    let upstream = fake_daemon::Upstream::Impostor {
        pid,
        curve_secret: None,
    };
    match fake_daemon::Fake::start(port, &PathBuf::from(dir), upstream) {
        Ok(fake) => {
            println!("listening on 127.0.0.1:{}", fake.port);
            fake.join();
        }
        Err(e) => {
            eprintln!("fake_daemon: cannot listen on {port}: {e}");
            std::process::exit(1);
        }
    }
}
