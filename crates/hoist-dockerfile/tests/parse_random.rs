//! Deterministic random "token soup" through every entry point: nothing may
//! panic, whatever the input (a cheap stand-in between fuzzer runs).

use std::collections::BTreeMap;

use hoist_dockerfile::instruction::{Dockerfile, Instruction};
use hoist_dockerfile::parser;
use hoist_dockerfile::Lexer;

const TOKENS: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "LABEL ",
    "ARG ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "SHELL ",
    "EXPOSE ",
    "VOLUME ",
    "WORKDIR ",
    "USER ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "ENTRYPOINT ",
    "AS ",
    "NONE",
    "CMD",
    "--mount=",
    "type=cache",
    "type=secret",
    "type=$T",
    "target=/x",
    "from=a",
    ",",
    "=",
    "--from=",
    "--link",
    "--",
    "--interval=",
    "1m30s",
    "-1s",
    "--retries=",
    "<<",
    "<<-",
    "EOF",
    "'EOF'",
    "\"",
    "'",
    "\\",
    "`",
    "$",
    "${",
    "}",
    ":-",
    "#",
    "# escape=`",
    "# syntax=x",
    "[",
    "]",
    "[\"a\"",
    ", 1",
    "{",
    "\\u00",
    "\n",
    "\n",
    "\n",
    "\r\n",
    " ",
    " ",
    "\t",
    "\u{a0}",
    "é",
    "☃",
    "\u{0}",
    "0",
    "9",
    "a",
    "b",
    "/",
    "-",
    ".",
    "\\\n",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_token_soup_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let len = (rng.next() % 40) as usize;
        let mut src = String::new();
        for _ in 0..len {
            let t = TOKENS[(rng.next() % TOKENS.len() as u64) as usize];
            src.push_str(t);
        }
        if let Ok(ast) = parser::parse(&src) {
            let _ = ast.dump();
        }
        if let Ok(df) = Dockerfile::parse(&src) {
            accepted += 1;
            let env: BTreeMap<String, String> = BTreeMap::new();
            if let Ok(scope) = df.global_args(&env, &[]) {
                for i in 0..df.stages.len() {
                    let _ = df.dependencies(i, &scope);
                    let _ = df.resolve_platform(i, &scope);
                }
            }
            for stage in &df.stages {
                for ins in &stage.instructions {
                    if let Instruction::Run(r) = ins {
                        for m in &r.mounts {
                            let _ = m.resolve(&Lexer::new(df.escape), &env);
                        }
                    }
                }
            }
        }
    }
    assert!(accepted > 0);
}
