//! Prints an Argon2id PHC string for a password, for `password_hash` in a config file.
//!
//! `cargo run --example hash_password -- 'my password'` (or the password on standard input).

fn main() {
    let password = match std::env::args().nth(1) {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("usage: hash_password <password>");
                std::process::exit(2);
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    println!("{}", auth_o_tron::provider::plain::hash_password(&password));
}
