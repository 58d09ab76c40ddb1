//! Watches through `kube::runtime::watcher` and raw `Api::watch`.

// Helpers outside `#[test]` fns unwrap too; clippy.toml only allows it inside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cma_testkit::{FakeApiServer, Gvr};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PartialObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})).unwrap()
}

async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("no event within 5s")
        .expect("stream ended")
}

/// The next event that is not an error.
async fn next_ok<K, S>(stream: &mut S) -> Event<K>
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
{
    loop {
        if let Ok(event) = next(stream).await {
            return event;
        }
    }
}

fn name<K: kube::Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

#[tokio::test]
async fn watcher_sees_add_modify_delete_and_recovers_after_410() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    api.create(&PostParams::default(), &cm("existing", json!({}))).await.unwrap();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();

    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitApply(o) if name(&o) == "existing"));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));

    api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(o) if name(&o) == "a"));
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "changed"}}))).await.unwrap();
    match next(&mut events).await.unwrap() {
        Event::Apply(o) => assert_eq!(o.data.unwrap()["k"], "changed"),
        other => panic!("expected a modification, got {other:?}"),
    }
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Delete(o) if name(&o) == "a"));

    // Forced compaction: the watcher's resume gets 410 Expired and it relists.
    fake.expire_watches();
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    assert!(matches!(next_ok(&mut events).await, Event::Init));
    assert!(matches!(next_ok(&mut events).await, Event::InitApply(o) if name(&o) == "existing"));
    assert!(matches!(next_ok(&mut events).await, Event::InitDone));
    api.create(&PostParams::default(), &cm("b", json!({}))).await.unwrap();
    assert!(matches!(next_ok(&mut events).await, Event::Apply(o) if name(&o) == "b"));
}

#[tokio::test]
async fn watcher_resumes_without_relist_when_history_is_kept() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));
    let lists = fake.count(cma_testkit::Verb::List);

    fake.close_watches();
    // Written while no watch is open: replayed from history on resume.
    fake.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}}))
        .unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(o) if name(&o) == "x"));
    assert_eq!(fake.count(cma_testkit::Verb::List), lists, "no relist");
}

#[tokio::test]
async fn label_selected_watch_turns_selector_transitions_into_add_and_delete() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let config = watcher::Config::default().labels("app.kubernetes.io/managed-by=cma-operator");
    let mut events = watcher::watcher(api.clone(), config).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));

    api.create(&PostParams::default(), &cm("other", json!({}))).await.unwrap();
    api.create(&PostParams::default(), &cm("managed", json!({"app.kubernetes.io/managed-by": "cma-operator"})))
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(o) if name(&o) == "managed"));

    let unlabel = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null}}});
    api.patch("managed", &PatchParams::default(), &Patch::Merge(&unlabel)).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Delete(o) if name(&o) == "managed"));

    let relabel = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "cma-operator"}}});
    api.patch("other", &PatchParams::default(), &Patch::Merge(&relabel)).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Apply(o) if name(&o) == "other"));
}

#[tokio::test]
async fn streaming_list_sends_initial_events_and_end_bookmark() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitApply(o) if name(&o) == "a"));
    assert!(matches!(next(&mut events).await.unwrap(), Event::InitDone));
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Delete(o) if name(&o) == "a"));
    let watch = fake.requests().into_iter().find(|r| r.verb == cma_testkit::Verb::Watch).unwrap();
    assert_eq!(watch.query("sendInitialEvents"), Some("true"));
}

#[tokio::test]
async fn metadata_watcher_gets_partial_objects_without_data() {
    let fake = FakeApiServer::new();
    let api: Api<Secret> = Api::namespaced(fake.client(), "ns");
    fake.insert(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns"}, "data": {"password": "c2VjcmV0"},
    }))
    .unwrap();
    let list = api.list_metadata(&Default::default()).await.unwrap();
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("s"));
    let meta: Api<PartialObjectMeta<Secret>> = Api::namespaced(fake.client(), "ns");
    let mut events = watcher::watcher(meta, watcher::Config::default()).boxed();
    assert!(matches!(next(&mut events).await.unwrap(), Event::Init));
    match next(&mut events).await.unwrap() {
        Event::InitApply(o) => assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata"),
        other => panic!("expected the secret's metadata, got {other:?}"),
    }
}

#[tokio::test]
async fn raw_watch_replays_from_resource_version_and_honours_timeout() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let first = api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    api.create(&PostParams::default(), &cm("b", json!({}))).await.unwrap();
    let rv = first.metadata.resource_version.unwrap();

    let wp = WatchParams::default().timeout(1);
    let events: Vec<WatchEvent<ConfigMap>> = api.watch(&wp, &rv).await.unwrap().try_collect().await.unwrap();
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => name(o),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(names, ["b"], "only events after the given resourceVersion; stream ends after 1s");
}

#[tokio::test]
async fn bookmarks_carry_the_current_resource_version() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    let rv = fake.resource_version().to_string();
    let mut stream = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    fake.send_bookmarks();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn history_limit_expires_old_resource_versions() {
    let fake = FakeApiServer::with_history_limit(2);
    let gvr = Gvr::of::<ConfigMap>();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let first = api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    for data in ["1", "2", "3"] {
        fake.patch_direct(&gvr, "ns", "a", &json!({"data": {"k": data}})).unwrap();
    }
    let mut stream =
        api.watch(&WatchParams::default(), first.metadata.resource_version.as_deref().unwrap()).await.unwrap().boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410, got {other:?}"),
    }
}
