//! Erasure is real (issue 8, row 12): after a meeting is deleted, no byte of its citizens'
//! text or names is left in the database file or its WAL — not while the server runs, and not
//! after it shut down (when SQLite folds the WAL into the file).

use std::path::Path;
use townhall_core::Command;
use townhall_core::command::{AskQuestion, PostComment, SetName};
use townhall_testkit::*;

/// Personal text that must disappear, each unique enough to find in raw bytes.
const NAME: &str = "Kirstine Qværnbølle";
const QUESTION: &str = "Hvorfor lugter Zyxwvutsrq-stien af tang?";
const COMMENT: &str = "Min nabo Pqzjrrr siger det samme";

/// Which of the personal texts occur anywhere in the data folder's files.
fn traces(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for text in [
            NAME,
            QUESTION,
            COMMENT,
            "Zyxwvutsrq",
            "Pqzjrrr",
            "Qværnbølle",
        ] {
            if bytes.windows(text.len()).any(|w| w == text.as_bytes()) {
                found.push(format!("{text:?} in {}", path.display()));
            }
        }
    }
    found
}

const TOWNHALL: &str = env!("CARGO_BIN_EXE_townhall");

#[tokio::test]
async fn a_deleted_meeting_leaves_no_personal_text_in_the_database_files() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let mut server = Launch::new(TOWNHALL, &dir).spawn();
    let kept = live_meeting(&server.base).await;
    let m = live_meeting(&server.base).await;
    let url = server.ws_url();
    let mut citizen = Client::join(&url, &m.id, None).await;
    citizen
        .run(Command::SetName(SetName { name: NAME.into() }))
        .await
        .unwrap();
    citizen
        .run(Command::AskQuestion(AskQuestion {
            text: QUESTION.into(),
            anonymous: false,
        }))
        .await
        .unwrap();
    citizen
        .run(Command::PostComment(PostComment {
            text: COMMENT.into(),
        }))
        .await
        .unwrap();
    // Another meeting's data stays.
    let mut other = Client::join(&url, &kept.id, None).await;
    other
        .run(Command::PostComment(PostComment {
            text: "Bliver stående".into(),
        }))
        .await
        .unwrap();
    assert!(!traces(&dir).is_empty(), "the text was written somewhere");

    let res = http()
        .delete(format!("{}/api/meetings/{}", server.base, m.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(traces(&dir), Vec::<String>::new(), "while running");

    citizen.close().await;
    other.close().await;
    // A clean shutdown (SIGTERM), after which SQLite has folded the WAL into the file.
    let pid = server.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(killed.unwrap().success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(traces(&dir), Vec::<String>::new(), "after shutdown");
    // The other meeting is still there.
    let restarted = Launch::new(TOWNHALL, &dir).spawn();
    let mut back = Client::join(&restarted.ws_url(), &kept.id, None).await;
    back.until(|v| v.comments.values().any(|c| c.text == "Bliver stående"))
        .await;
}
