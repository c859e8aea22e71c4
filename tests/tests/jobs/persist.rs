//! The persist job: a submission's fields saved into its item and the move queued,
//! once however often it runs; a later submission's fields are never overwritten
//! by an earlier one persisted late.

use crate::{ready_then_no_worker, submit};
use upload_db::jobs::SubmissionJob;
use upload_e2e::{MIB, TestFile, pb, submission};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisting_saves_the_fields_and_queues_the_move_once() {
    let file = TestFile::random(MIB);
    let (app, client, ups) = ready_then_no_worker("seller-persist", &[&file]).await;
    let sub = submit(&client, "persist-me", &ups[0]).await;
    let ctx = app.job_context().await;
    for _ in 0..2 {
        upload_worker::persist::run(&ctx, SubmissionJob::first(sub))
            .await
            .unwrap();
    }
    assert_eq!(
        app.count("SELECT count(*) FROM items WHERE title = 'persist-me'")
            .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM item_submissions WHERE id = '{sub}' AND state = 'persisted'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = 'item.move' AND idempotency_key = '{sub}#1'"
        ))
        .await,
        1,
        "one move queued, however often persist ran"
    );
    // Nobody runs them here: the persist row (run by hand) and the move stay queued.
    app.expect_unfinished_jobs(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_submissions_fields_win_over_an_earlier_one_persisted_late() {
    let (a, b) = (TestFile::random(MIB), TestFile::random(MIB));
    let (app, client, ups) = ready_then_no_worker("seller-order", &[&a, &b]).await;
    let first = client
        .items()
        .submit_item(submission(
            "order-1",
            "",
            pb::ItemKind::DigitalFile,
            "Old title",
            &[(&ups[0].upload_id, "")],
        ))
        .await
        .unwrap()
        .into_inner();
    let item_id = first.item.unwrap().item_id;
    let second = client
        .items()
        .submit_item(submission(
            "order-2",
            &item_id,
            pb::ItemKind::DigitalFile,
            "New title",
            &[(&ups[1].upload_id, "")],
        ))
        .await
        .unwrap()
        .into_inner();
    let ctx = app.job_context().await;
    // The second submission is persisted first; the first one arrives late.
    for sub in [&second.submission_id, &first.submission_id] {
        upload_worker::persist::run(&ctx, SubmissionJob::first(sub.parse().unwrap()))
            .await
            .unwrap();
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM items WHERE id = '{item_id}' AND title = 'New title'"
        ))
        .await,
        1
    );
    // Two persist rows run by hand, two moves queued, nobody to run them.
    app.expect_unfinished_jobs(4);
}
