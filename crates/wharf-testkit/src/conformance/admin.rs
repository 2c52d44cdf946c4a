//! Token and account administration: `/user/tokens` and `POST /accounts`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{Reply, TestServer};

/// The fields a listed token may have: never its secret or hash.
const LISTED_TOKEN_FIELDS: [&str; 6] = ["id", "name", "status", "scope", "issued_on", "modified_on"];

/// A request outside the account prefix (`/client/v4{path}`) with `secret`.
async fn admin(server: &TestServer, secret: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = server.client.request(method, server.api_url(path)).bearer_auth(secret);
    if let Some(body) = body {
        request = request.json(&body);
    }
    server.send(request).await
}

/// A request to `/client/v4/accounts/{account}{path}` with `secret`.
async fn on_account(server: &TestServer, secret: &str, account: &str, method: Method, path: &str) -> Reply {
    let url = server.api_url(&format!("/accounts/{account}{path}"));
    server.send(server.client.request(method, url).bearer_auth(secret).json(&json!({}))).await
}

async fn create_token(server: &TestServer, secret: &str, body: Value) -> Value {
    admin(server, secret, Method::POST, "/user/tokens", Some(body)).await.ok()
}

async fn list_tokens(server: &TestServer, secret: &str) -> Vec<Value> {
    let listed = admin(server, secret, Method::GET, "/user/tokens", None).await.ok();
    listed.as_array().cloned().expect("token list is an array")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_string()
}

pub async fn read_token_reads_and_revoked_token_is_refused(server: &TestServer) {
    let queue = server.pull_queue("guarded-by-api-token", json!({})).await;
    let created = create_token(server, &server.token, json!({"name": "dashboard"})).await;
    assert_eq!((created["name"].as_str(), created["scope"].as_str()), (Some("dashboard"), Some("read")));
    assert_eq!(created["status"], "active");
    assert!(super::is_rfc3339_ms(&created["issued_on"]), "{created}");
    let (id, secret) = (text(&created["id"]), text(&created["value"]));
    assert_eq!(id.len(), 32);

    let account = server.account.to_string();
    on_account(server, &secret, &account, Method::GET, "/queues").await.ok();
    on_account(server, &secret, &account, Method::GET, &format!("/queues/{queue}/metrics")).await.ok();
    let push = server.client.post(server.url(&format!("/queues/{queue}/messages"))).bearer_auth(&secret);
    server.send(push.json(&json!({"body": "x", "content_type": "text"}))).await.fails(403, 10000);
    assert_eq!(server.metrics(&queue).await["backlog_count"], 0, "the refused push stored nothing");
    // A read token may not manage tokens, not even list them.
    admin(server, &secret, Method::GET, "/user/tokens", None).await.fails(403, 10000);
    admin(server, &secret, Method::POST, "/user/tokens", Some(json!({"name": "x", "scope": "write"})))
        .await
        .fails(403, 10000);
    admin(server, &secret, Method::DELETE, &format!("/user/tokens/{id}"), None).await.fails(403, 10000);

    let revoked = admin(server, &server.token, Method::DELETE, &format!("/user/tokens/{id}"), None).await.ok();
    assert_eq!(revoked, json!({"id": id}));
    on_account(server, &secret, &account, Method::GET, "/queues").await.fails(403, 10000);
    let verify = server.client.get(server.api_url("/user/tokens/verify")).bearer_auth(&secret);
    server.send(verify).await.fails(403, 10000);
    assert!(list_tokens(server, &server.token).await.iter().all(|token| token["id"] != id.as_str()));

    admin(server, &server.token, Method::DELETE, &format!("/user/tokens/{id}"), None).await.fails(404, 11021);
    for unknown in [super::random_hex(), "not-a-token-id".to_string()] {
        admin(server, &server.token, Method::DELETE, &format!("/user/tokens/{unknown}"), None).await.fails(404, 11021);
    }
    admin(server, &server.token, Method::GET, "/user/tokens", None).await.ok();
    server.send(server.client.get(server.api_url("/user/tokens"))).await.fails(400, 6003);
}

pub async fn token_lists_never_show_secrets(server: &TestServer) {
    let writer = create_token(server, &server.token, json!({"name": "deployer", "scope": "write"})).await;
    assert_eq!(writer["scope"], "write");
    let reader = create_token(server, &server.token, json!({"name": "reader", "scope": "read"})).await;
    let secrets = [server.token.clone(), text(&writer["value"]), text(&reader["value"])];

    // The new write token manages tokens too; every write token sees the same list.
    let reply = admin(server, &secrets[1], Method::GET, "/user/tokens", None).await;
    let raw = reply.body.to_string();
    for secret in &secrets {
        assert!(!raw.contains(secret.as_str()), "a secret leaked into the list: {raw}");
    }
    assert_eq!(reply.body["result_info"]["total_count"], 3, "{raw}");
    let listed = reply.ok();
    let mut names: Vec<String> = listed.as_array().expect("array").iter().map(|t| text(&t["name"])).collect();
    names.sort();
    assert_eq!(names, ["admin", "deployer", "reader"]);
    for token in listed.as_array().expect("array") {
        let object = token.as_object().expect("token object");
        for key in object.keys() {
            assert!(LISTED_TOKEN_FIELDS.contains(&key.as_str()), "unexpected field {key} in {token}");
        }
        assert_eq!(token["status"], "active");
    }
    let first_page = admin(server, &server.token, Method::GET, "/user/tokens?per_page=2&page=2", None).await;
    assert_eq!(first_page.body["result_info"]["count"], 1, "{}", first_page.body);

    for bad in [json!({}), json!({"name": ""}), json!({"name": "x", "scope": "admin"}), json!({"name": 7})] {
        admin(server, &server.token, Method::POST, "/user/tokens", Some(bad)).await.fails(400, 10207);
    }
    admin(server, &server.token, Method::GET, "/user/tokens?per_page=51", None).await.fails(400, 10207);
    assert_eq!(list_tokens(server, &server.token).await.len(), 3, "refused creations created nothing");
}

pub async fn last_write_token_is_kept(server: &TestServer) {
    let tokens = list_tokens(server, &server.token).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let admin_id = text(&tokens[0]["id"]);
    let path = format!("/user/tokens/{admin_id}");
    admin(server, &server.token, Method::DELETE, &path, None).await.fails(409, 11022);
    // Read tokens do not count: they cannot manage anything.
    create_token(server, &server.token, json!({"name": "reader"})).await;
    admin(server, &server.token, Method::DELETE, &path, None).await.fails(409, 11022);

    // Rotation: a second write token, then the first one revokes itself.
    let next = text(&create_token(server, &server.token, json!({"name": "next", "scope": "write"})).await["value"]);
    admin(server, &server.token, Method::DELETE, &path, None).await.ok();
    server.get("/queues").await.fails(403, 10000);
    let remaining = list_tokens(server, &next).await;
    assert_eq!(remaining.len(), 2);
    let next_id = remaining.iter().find(|t| t["name"] == "next").map(|t| text(&t["id"])).expect("next token");
    admin(server, &next, Method::DELETE, &format!("/user/tokens/{next_id}"), None).await.fails(409, 11022);
    on_account(server, &next, &server.account.to_string(), Method::GET, "/queues").await.ok();
}

pub async fn only_the_operator_creates_accounts(server: &TestServer) {
    let body = json!({"name": "team b", "email": "team-b@example.com"});
    let created = admin(server, &server.token, Method::POST, "/accounts", Some(body)).await.ok();
    let (account, secret) = (text(&created["id"]), text(&created["token"]["value"]));
    assert_eq!(account.len(), 32);
    assert_ne!(account, server.account.to_string());
    assert_eq!(
        (created["email"].as_str(), created["token"]["scope"].as_str()),
        (Some("team-b@example.com"), Some("write"))
    );

    // Its token works on its own account's paths only.
    let queue = on_account(server, &secret, &account, Method::POST, "/queues").await;
    queue.fails(400, 10207);
    let make = server
        .client
        .post(server.api_url(&format!("/accounts/{account}/queues")))
        .bearer_auth(&secret)
        .json(&json!({"queue_name": "b-orders"}));
    server.send(make).await.ok();
    let theirs = on_account(server, &secret, &account, Method::GET, "/queues").await;
    assert_eq!(theirs.body["result_info"]["total_count"], 1);
    on_account(server, &secret, &server.account.to_string(), Method::GET, "/queues").await.fails(403, 10000);
    on_account(server, &server.token, &account, Method::GET, "/queues").await.fails(403, 10000);
    assert_eq!(server.get("/queues").await.body["result_info"]["total_count"], 0, "the operator's queues are apart");
    let seen = admin(server, &secret, Method::GET, "/accounts", None).await.ok();
    assert_eq!(seen[0]["id"], account.as_str());
    let by_email = server
        .client
        .get(server.api_url(&format!("/accounts/{account}/queues")))
        .header("x-auth-email", "team-b@example.com")
        .header("x-auth-key", &secret);
    server.send(by_email).await.ok();
    let own_tokens = list_tokens(server, &secret).await;
    assert_eq!(own_tokens.len(), 1, "a new account sees only its own tokens: {own_tokens:?}");
    assert_eq!(list_tokens(server, &server.token).await.len(), 1, "and the operator only its own");

    // Nobody else creates accounts: not another account, not a read token of the operator.
    let other = json!({"email": "c@example.com"});
    admin(server, &secret, Method::POST, "/accounts", Some(other.clone())).await.fails(403, 10000);
    let reader = text(&create_token(server, &server.token, json!({"name": "r"})).await["value"]);
    admin(server, &reader, Method::POST, "/accounts", Some(other.clone())).await.fails(403, 10000);
    server.send(server.client.post(server.api_url("/accounts")).json(&other)).await.fails(400, 6003);

    let duplicate = json!({"id": account});
    admin(server, &server.token, Method::POST, "/accounts", Some(duplicate)).await.fails(409, 11023);
    for bad in [json!({"id": "xyz"}), json!({"email": "no-at-sign"}), json!({"email": 3})] {
        admin(server, &server.token, Method::POST, "/accounts", Some(bad)).await.fails(400, 10207);
    }
    let chosen = super::random_hex();
    let defaulted = admin(server, &server.token, Method::POST, "/accounts", Some(json!({"id": chosen}))).await.ok();
    assert_eq!(defaulted["id"], chosen.as_str());
    assert_eq!(defaulted["email"], "admin@localhost");
    admin(server, &server.token, Method::DELETE, "/accounts", None).await.fails(405, 7001);
}
