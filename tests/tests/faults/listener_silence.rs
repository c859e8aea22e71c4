//! The progress listener's connection goes silent (frozen: open, never closed,
//! nothing moves, as behind a NAT that forgot it) and new connections hang too for
//! a while: the listener notices by its own missing heartbeat, gives up on
//! connections that never answer, reconnects once the network is back, tells
//! every watcher to re-read, and delivers changes again.

use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use upload_e2e::{AppOptions, Proxy, ProxyRules, TestApp};
use upload_server::progress_hub::{HubEvent, ProgressHub};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_listening_connection_is_replaced_and_watchers_hear_again() {
    let app = TestApp::spawn_with(AppOptions {
        worker: false,
        ..Default::default()
    })
    .await;
    // The listener reaches PostgreSQL through the proxy; the heartbeat through a
    // pool that goes straight there (as a server's pool would, on another path).
    let (head, tail) = app.database_url.split_once('@').unwrap();
    let (addr, db) = tail.split_once('/').unwrap();
    let proxy = Proxy::start(&format!("http://{addr}"), ProxyRules::default()).await;
    let through_proxy = format!("{head}@{}/{db}", proxy.addr);
    let pool = upload_db::connect_pool(&app.database_url, 2).await.unwrap();
    let hub = ProgressHub::start(through_proxy, pool.clone());
    let id = uuid::Uuid::now_v7();
    let mut events = hub.subscribe(id);
    let notify = || async {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query(format!(
            "SELECT pg_notify('{}', '{id}')",
            upload_db::UPLOAD_EVENTS_CHANNEL
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    };
    // Listening: a change is heard (after the first connection's resync).
    assert_eq!(
        next(&mut events, Duration::from_secs(10)).await,
        Some(HubEvent::Resync)
    );
    notify().await;
    assert_eq!(
        next(&mut events, Duration::from_secs(5)).await,
        Some(HubEvent::Changed)
    );

    // The network freezes for 25 s: the open connection and any new one.
    proxy.freeze();
    let frozen_at = Instant::now();
    notify().await;
    assert_eq!(
        next(&mut events, Duration::from_secs(3)).await,
        None,
        "nothing can be heard through a frozen connection"
    );
    tokio::time::sleep(Duration::from_secs(25).saturating_sub(frozen_at.elapsed())).await;
    proxy.thaw();
    let thawed_at = Instant::now();

    // The listener replaces it: every watcher is told to re-read, then hears again.
    let resync = next(&mut events, Duration::from_secs(40)).await;
    assert_eq!(
        resync,
        Some(HubEvent::Resync),
        "no reconnection after the freeze"
    );
    let back_after = thawed_at.elapsed();
    notify().await;
    assert_eq!(
        next(&mut events, Duration::from_secs(5)).await,
        Some(HubEvent::Changed)
    );
    eprintln!(
        "progress listener: frozen {:.1} s, listening again {:.1} s after the network came back",
        thawed_at.duration_since(frozen_at).as_secs_f64(),
        back_after.as_secs_f64()
    );
}

/// The next event within `within`, if any.
async fn next(
    events: &mut tokio::sync::broadcast::Receiver<HubEvent>,
    within: Duration,
) -> Option<HubEvent> {
    tokio::time::timeout(within, events.recv())
        .await
        .ok()
        .and_then(Result::ok)
}
