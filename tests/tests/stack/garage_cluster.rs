//! The service on the stack's three-node Garage cluster (every object on three
//! nodes, quorum reads and writes): a file uploaded, scanned, submitted and
//! stored while one node is down, and downloaded whole while another one is.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use md5::Digest;
use std::time::Duration;

use upload_e2e::{
    AppOptions, MIB, TestApp, TestFile, fetch, pb, poll_until, stack_env, submit_new_item,
    wait_item,
};

/// A node of the cluster, as the stack started it.
struct Node {
    dir: PathBuf,
}

impl Node {
    fn nth(i: u32) -> Self {
        let dir = PathBuf::from(&stack_env()["UPLOAD_CLUSTER_DIR"]).join(format!("n{i}"));
        Self { dir }
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn alive(&self) -> bool {
        self.pid()
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    }

    /// True when node 1 sees every node of the cluster healthy.
    fn cluster_healthy() -> bool {
        let conf = Node::nth(1).dir.join("garage.toml");
        std::process::Command::new("garage")
            .arg("-c")
            .arg(conf)
            .arg("status")
            .output()
            .is_ok_and(|out| {
                let text = String::from_utf8_lossy(&out.stdout);
                out.status.success() && !text.contains("FAILED NODES")
            })
    }

    /// SIGKILL: the node is gone, as a crashed machine is.
    fn kill(&self) -> Killed<'_> {
        let pid = self.pid().expect("the node runs");
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        poll_sync(|| !self.alive());
        Killed(self)
    }

    /// Starts it again with the stack's command line, in the background as the
    /// stack does (in a process group of its own: the node outlives the test).
    fn start(&self) {
        let cmd = std::fs::read_to_string(self.dir.join("cmd")).expect("the node's command");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "nohup {} >> '{log}' 2>&1 & echo $! > '{pid}'",
                cmd.trim(),
                log = self.dir.join("garage.log").display(),
                pid = self.dir.join("pid").display(),
            ))
            .process_group(0)
            .status()
            .expect("sh");
        assert!(status.success(), "garage starts");
    }
}

/// A killed node, started again when this drops (even when the test fails).
struct Killed<'a>(&'a Node);

impl Drop for Killed<'_> {
    fn drop(&mut self) {
        if !self.0.alive() {
            self.0.start();
        }
        poll_sync(Node::cluster_healthy);
    }
}

fn poll_sync(done: impl Fn() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_stored_while_a_node_is_down_and_read_back_while_another_is() {
    let app = TestApp::spawn_with(AppOptions {
        cluster: true,
        ..Default::default()
    })
    .await;
    let file = TestFile::random_zip(12 * MIB + 17);
    let (client, up) = app
        .upload_whole("seller-cluster", &file, "pack.zip", "application/zip")
        .await;

    // Node 3 crashes: two of three still make every quorum.
    let third = Node::nth(3);
    let down = third.kill();
    let ready = app
        .wait_settled(&client, &up.upload_id, Duration::from_secs(60))
        .await;
    assert_eq!(ready.state, pb::UploadState::Ready as i32, "{ready:?}");
    assert_eq!(ready.metadata.expect("hashes").md5_hex, file.md5_hex);
    let submitted = submit_new_item(
        &client,
        "cluster-1",
        pb::ItemKind::DigitalFile,
        "Pack",
        &up.upload_id,
    )
    .await;
    let item_id = submitted.item.expect("the item").item_id;
    let item = wait_item(&client, &item_id, Duration::from_secs(60)).await;
    assert_eq!(item.state, pb::SubmissionState::Stored as i32, "{item:?}");
    drop(down);
    poll_until(
        "node 3 back in the cluster",
        Duration::from_secs(30),
        || async { (Node::cluster_healthy(), ()) },
    )
    .await;

    // Node 2 crashes now: nodes 1 and 3 (which was away for the writes) answer.
    let second = Node::nth(2);
    let _down = second.kill();
    let file_id = item.files[0].file_id.clone();
    let url = client
        .items()
        .get_download_url(pb::GetDownloadUrlRequest {
            item_id: item_id.clone(),
            file_id,
            version: 0,
        })
        .await
        .expect("GetDownloadUrl")
        .into_inner()
        .url;
    let fetched = fetch(&url).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body.len() as u64, file.size);
    assert_eq!(hex::encode(md5::Md5::digest(&fetched.body)), file.md5_hex);
}
