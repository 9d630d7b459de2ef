//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`), generated from the route
//! table ([`crate::routes`]): each route's method, path, scope and summary, the path
//! parameters its `{…}` names, and the JSON Schemas (schemars, from the same serde
//! attributes the wire uses) of what it takes and answers. Nothing is written by hand
//! twice, so the document cannot drift from the router: a test checks both ways.

use axum::Json;
use axum::extract::State;
use buildstate_core::Scope;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::routes::Route;
use crate::{AppState, Options};

/// A schema of a type, made with the document's generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The schema of `T`: a `$ref` into `components/schemas` for named types.
pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// The schema of `T` itself, never a `$ref`: a query struct, whose properties become
/// parameters.
pub fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

/// What a route takes and answers, for the document.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    /// The JSON body it takes.
    pub body: Option<SchemaFn>,
    /// Its query string, as a struct whose fields are the parameters.
    pub query: Option<SchemaFn>,
    /// The status of success.
    pub status: u16,
    /// What success answers (`None`: no body).
    pub answer: Option<SchemaFn>,
    /// Takes `If-Match` and `Buildstate-Lease-Token` ([`crate::routes`]' `guard`).
    pub guarded: bool,
    /// Success answers this media type, not JSON: `text/plain` (the Prometheus
    /// exposition of `/metrics`, attempt logs), `text/event-stream` (the events).
    pub media: Option<&'static str>,
}

impl Default for Api {
    fn default() -> Self {
        Api { body: None, query: None, status: 200, answer: None, guarded: false, media: None }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(&crate::routes(), &state.options))
}

/// The document for `routes`, as a server with `options` answers them.
pub fn document(routes: &[Route], options: &Options) -> Value {
    // Two contracts: what a client may send (a defaulted field is optional) and what the
    // server writes (a field it always writes is required), so that answers are checked
    // as strictly as requests.
    let generator = |contract| {
        schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.contract = contract;
            })
            .into_generator()
    };
    let mut g = Generators {
        input: generator(schemars::generate::Contract::Deserialize),
        output: generator(schemars::generate::Contract::Serialize),
    };
    let error = g.output.subschema_for::<crate::error::Body<'static>>().to_value();
    let mut ops = Vec::new();
    for r in routes {
        ops.push((r, operation(r, &mut g, options, &error)));
    }
    let (schemas, answers) = merge(g.input.take_definitions(true), g.output.take_definitions(true));
    let mut paths = Map::new();
    for (r, mut op) in ops {
        if let Some(responses) = op.get_mut("responses") {
            retarget(responses, &answers);
        }
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(r.method.as_str().to_ascii_lowercase(), op);
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "buildstate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of `buildstate serve`: builds, their transitions, records and \
                reports, over any buildstate store, with the same rules as the CLI. Every error \
                answers `{\"error\": {\"code\", \"message\", \"hint\"}}`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token of `buildstate token create`; its scopes (read, write, \
                        admin) decide which operations it may call (`x-buildstate-scope`)",
                },
            },
        },
    });
    bound_integers(&mut doc);
    doc
}

/// The document's schema generators: one for what clients send, one for answers.
struct Generators {
    input: SchemaGenerator,
    output: SchemaGenerator,
}

/// What a type is called when its answer's schema differs from its request's.
fn answer_name(name: &str) -> String {
    format!("{name}Answer")
}

const SCHEMAS: &str = "#/components/schemas/";

/// Whether `v` has a `$ref` to one of `names`.
fn refers_to(v: &Value, names: &std::collections::BTreeSet<String>) -> bool {
    match v {
        Value::String(s) => s.strip_prefix(SCHEMAS).is_some_and(|n| names.contains(n)),
        Value::Object(o) => o.values().any(|v| refers_to(v, names)),
        Value::Array(a) => a.iter().any(|v| refers_to(v, names)),
        _ => false,
    }
}

/// Points the `$ref`s of `v` to `names` at their answers' schemas.
fn retarget(v: &mut Value, names: &std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(n) = r.strip_prefix(SCHEMAS).filter(|n| names.contains(*n))
            {
                *r = format!("{SCHEMAS}{}", answer_name(n));
            }
            o.values_mut().for_each(|v| retarget(v, names));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| retarget(v, names)),
        _ => {}
    }
}

/// One set of schemas from both contracts: a type whose two schemas agree (and refer
/// only to types that agree) is one schema; any other keeps its request schema under its
/// name and its answer's under [`answer_name`]. Returns the schemas and the names whose
/// answers were set apart (for [`retarget`]).
fn merge(
    input: Map<String, Value>,
    output: Map<String, Value>,
) -> (Map<String, Value>, std::collections::BTreeSet<String>) {
    let mut apart: std::collections::BTreeSet<String> = output
        .iter()
        .filter(|(name, s)| input.get(*name).is_some_and(|i| i != *s))
        .map(|(name, _)| name.clone())
        .collect();
    // A type that refers to one set apart is set apart too, until nothing changes.
    loop {
        let more: Vec<String> = output
            .iter()
            .filter(|(name, s)| input.contains_key(*name) && !apart.contains(*name) && refers_to(s, &apart))
            .map(|(name, _)| name.clone())
            .collect();
        if more.is_empty() {
            break;
        }
        apart.extend(more);
    }
    let mut schemas = input;
    for (name, mut s) in output {
        retarget(&mut s, &apart);
        if apart.contains(&name) {
            schemas.insert(answer_name(&name), s);
        } else {
            schemas.entry(name).or_insert(s);
        }
    }
    (schemas, apart)
}

/// Gives every integer schema the range of its Rust type: schemars names it only as a
/// `format` (`uint32`), which validators and generators ignore, so a client (and
/// schemathesis, which found it) was told that 2^40 is a fine `pid`.
fn bound_integers(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let range: Option<(Value, Value)> = match o.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((json!(0), json!(u8::MAX))),
                Some("uint16") => Some((json!(0), json!(u16::MAX))),
                Some("uint32") => Some((json!(0), json!(u32::MAX))),
                Some("uint64" | "uint") => Some((json!(0), json!(u64::MAX))),
                Some("int8") => Some((json!(i8::MIN), json!(i8::MAX))),
                Some("int16") => Some((json!(i16::MIN), json!(i16::MAX))),
                Some("int32") => Some((json!(i32::MIN), json!(i32::MAX))),
                Some("int64" | "int") => Some((json!(i64::MIN), json!(i64::MAX))),
                _ => None,
            };
            if let Some((min, max)) = range {
                o.entry("minimum").or_insert(min);
                o.entry("maximum").or_insert(max);
            }
            o.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// The `{…}` names of a path, in order.
pub fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// A path parameter's schema, by its name (each name means one thing in every path).
fn path_schema(name: &str, g: &mut SchemaGenerator) -> Value {
    match name {
        "kind" => json!({"type": "string", "enum": ["platforms", "os-versions", "image-types"]}),
        "report" => {
            let names: Vec<&str> =
                buildstate_store::report::ReportName::ALL.iter().map(|n| n.as_str()).collect();
            json!({"type": "string", "enum": names})
        }
        "name" => g.subschema_for::<buildstate_core::Name>().to_value(),
        "key" => g.subschema_for::<buildstate_core::MetaKey>().to_value(),
        "id" => g.subschema_for::<buildstate_core::TokenId>().to_value(),
        "n" => json!({"type": "integer", "minimum": 1, "maximum": 4_294_967_295_u64}),
        // A build (or token) reference: an id, a number or a unique prefix of either.
        _ => json!({"type": "string", "minLength": 1}),
    }
}

fn path_description(name: &str) -> &'static str {
    match name {
        "reference" => "a full id, a number, or a unique prefix of either",
        "kind" => "which catalog",
        "report" => "a report of `buildstate report`",
        "name" => "a catalog item's name",
        "key" => "a metadata key",
        "id" => "a token's public id",
        "n" => "an attempt's place among the build's attempts, from 1",
        _ => "",
    }
}

/// A query struct's schema without the `null` an `Option` adds: an absent parameter is
/// how a query says "none".
fn not_null(mut s: Value) -> Value {
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let rest: Vec<Value> =
            any.iter().filter(|v| v.get("type") != Some(&json!("null"))).cloned().collect();
        if rest.len() == 1 {
            let mut only = rest.into_iter().next().unwrap_or_default();
            if let (Some(o), Some(d)) = (only.as_object_mut(), s.get("description")) {
                o.insert("description".into(), d.clone());
            }
            return only;
        }
    }
    if let Some(types) = s.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types[0].clone();
            s["type"] = t;
        }
    }
    if let Some(o) = s.as_object_mut() {
        o.remove("default");
    }
    s
}

fn query_params(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    props
        .iter()
        .map(|(name, s)| {
            let mut p = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": not_null(s.clone()),
            });
            if let Some(d) = s.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

/// The guard headers of a write ([`crate::routes`]' `guard`).
fn guard_headers() -> [Value; 2] {
    [
        json!({
            "name": "If-Match",
            "in": "header",
            "required": false,
            "description": "the build's version the write expects (the `version` a read returned); \
                412 when the build moved on",
            "schema": {"type": "string", "pattern": "^(W/)?\"?[0-9]{1,19}\"?$"},
        }),
        json!({
            "name": crate::routes::LEASE_HEADER,
            "in": "header",
            "required": false,
            "description": "the lease token acquiring the build's lease answered: the write is \
                refused (409) once another runner took the build over",
            "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
        }),
    ]
}

/// The error statuses a route can answer, and what each means.
fn errors(r: &Route) -> Vec<(u16, &'static str)> {
    let Some(_) = r.scope else {
        // Health checks and this document read nothing a client sends.
        return if r.path == "/readyz" { vec![(503, "the store cannot be reached")] } else { Vec::new() };
    };
    let writes = r.method != axum::http::Method::GET;
    let mut e = vec![
        (400, "the path, query or headers are malformed"),
        (401, "no valid token"),
        (403, "the token lacks the scope"),
        (422, "a value is invalid"),
        (429, "too many refused tokens from this address"),
        (503, "the store is busy or cannot be reached"),
    ];
    if writes || path_params(r.path).next().is_some() {
        e.push((404, "no such build, catalog item, token or failure"));
    }
    if writes || path_params(r.path).next().is_some() {
        e.push((409, "a reference matches several builds, or the write conflicts with the stored state"));
    }
    if r.api.body.is_some() {
        e.push((413, "the body is too large"));
        e.push((415, "the body is not JSON"));
    }
    if r.api.guarded {
        e.push((412, "If-Match names a version the build is no longer at"));
    }
    e.sort_unstable();
    e
}

fn operation(r: &Route, gens: &mut Generators, options: &Options, error: &Value) -> Value {
    let g = &mut gens.input;
    let mut params: Vec<Value> = path_params(r.path)
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": path_description(name),
                "schema": path_schema(name, g),
            })
        })
        .collect();
    if let Some(q) = r.api.query {
        params.extend(query_params(&q(g).to_value()));
    }
    if r.api.guarded {
        params.extend(guard_headers());
    }
    let mut responses = Map::new();
    let mut ok = json!({"description": r.summary});
    if let Some(media) = r.api.media {
        ok["content"] = json!({media: {"schema": {"type": "string"}}});
    }
    if let Some(answer) = r.api.answer {
        ok["content"] = json!({"application/json": {"schema": answer(&mut gens.output).to_value()}});
    }
    responses.insert(r.api.status.to_string(), ok);
    for (status, what) in errors(r) {
        responses.insert(
            status.to_string(),
            json!({"description": what, "content": {"application/json": {"schema": error}}}),
        );
    }
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "parameters": params,
        "responses": responses,
    });
    match r.scope {
        None => op["security"] = json!([]),
        Some(scope) => {
            op["security"] = if scope == Scope::Read && options.allow_anonymous_read {
                json!([{"bearer": []}, {}])
            } else {
                json!([{"bearer": []}])
            };
            op["x-buildstate-scope"] = json!(scope.as_str());
        }
    }
    if let Some(body) = r.api.body {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body(&mut gens.input).to_value()}}});
    }
    op
}

/// `post_api_v1_builds_reference_transitions`: unique, since (method, path) is.
fn operation_id(r: &Route) -> String {
    let path: String = r
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{path}", r.method.as_str().to_ascii_lowercase())
}
