//! The preview read path: `render_preview` (MCP) → [`CoreCall::Preview`]
//! → one `preview` command to one engine over the link → a checked PNG.
//!
//! A preview is a read: nothing is journaled or sequenced, no object is
//! locked, and it is allowed during PANIC like every other read. The core
//! only checks the request against its configuration and the canonical
//! scene ([`plan`], pure) and hands the round trip to its own task
//! ([`start`]), so a render of a second or two never stalls the core loop.
//! What comes back is checked to be a PNG of the asked size ([`check_png`],
//! pure) before the agent sees it.
//!
//! [`CoreCall::Preview`]: crate::core_api::CoreCall::Preview

use std::time::Instant;

use base64::Engine as _;
use vibesync_canonical::Scene;
use vibesync_link::{Link, LinkError};
use vibesync_protocol::CommandBody;

use crate::core_api::{
    CoreError, ErrorCode, PREVIEW_MAX_SIDE, PreviewImage, PreviewRequest, Reply,
};

/// The engine kind that renders previews when the agent names none.
const RENDERING_KIND: &str = "blender";

/// Which engine renders, and the command it gets; or the refusal (rule,
/// field, remedy). `engines` is the configuration: (name, kind).
pub fn plan(
    request: &PreviewRequest,
    engines: &[(String, String)],
    scene: &Scene,
) -> Result<(String, CommandBody), CoreError> {
    for (field, side) in [("/width", request.width), ("/height", request.height)] {
        if side == 0 || side > PREVIEW_MAX_SIDE {
            return Err(CoreError::new(
                ErrorCode::InvalidArgs,
                field,
                format!("a preview side of {side} px is outside 1..={PREVIEW_MAX_SIDE}"),
                format!("ask for a small preview, e.g. 320 x 240 (at most {PREVIEW_MAX_SIDE} px a side: the engine renders on its main thread)"),
            )
            .with_rule("host.preview-size"));
        }
    }
    let engine = match &request.engine {
        Some(name) => {
            if !engines.iter().any(|(n, _)| n == name) {
                let names: Vec<&str> = engines.iter().map(|(n, _)| n.as_str()).collect();
                return Err(CoreError::new(
                    ErrorCode::NotFound,
                    "/engine",
                    format!("no engine `{name}` is configured"),
                    format!("name one of: {} (list_engines shows them)", names.join(", ")),
                )
                .with_rule("host.preview-engine"));
            }
            name.clone()
        }
        None => engines
            .iter()
            .find(|(_, kind)| kind == RENDERING_KIND)
            .map(|(n, _)| n.clone())
            .ok_or_else(|| {
                CoreError::new(
                    ErrorCode::NotFound,
                    "/engine",
                    "no Blender engine is configured, and only the Blender adapter renders previews",
                    "configure and connect a Blender engine, or name an engine that renders previews in `engine`",
                )
                .with_rule("host.preview-engine")
            })?,
    };
    if let Some(ids) = &request.ids
        && let Some((i, id)) = ids
            .iter()
            .enumerate()
            .find(|(_, id)| scene.get(id).is_none())
    {
        return Err(CoreError::new(
            ErrorCode::NotFound,
            format!("/ids/{i}"),
            format!("no object `{id}` in the canonical scene"),
            "frame objects read_scene lists, or leave `ids` out to use the scene camera",
        )
        .with_rule("host.preview-ids"));
    }
    Ok((
        engine,
        CommandBody::Preview {
            width: request.width,
            height: request.height,
            ids: request.ids.clone(),
        },
    ))
}

/// Plans the request, then runs the engine round trip in its own task and
/// answers `reply` from there.
pub fn start(
    link: &Link,
    engines: &[(String, String)],
    scene: &Scene,
    request: PreviewRequest,
    reply: Reply<PreviewImage>,
) {
    let (engine, body) = match plan(&request, engines, scene) {
        Ok(p) => p,
        Err(e) => {
            let _ = reply.send(Err(e));
            return;
        }
    };
    let link = link.clone();
    tokio::spawn(async move {
        let t0 = Instant::now();
        let result = link
            .send(&engine, body)
            .await
            .map_err(|e| link_refusal(&engine, e))
            .and_then(|v| {
                decode_reply(&engine, &v, request.width, request.height).map(|png| PreviewImage {
                    engine: engine.clone(),
                    width: request.width,
                    height: request.height,
                    png,
                    elapsed_ms: t0.elapsed().as_millis() as u64,
                })
            });
        let _ = reply.send(result);
    });
}

/// The engine's `{png_base64}` as checked PNG bytes.
pub fn decode_reply(
    engine: &str,
    reply: &serde_json::Value,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, CoreError> {
    let bad = |why: String| {
        CoreError::new(
            ErrorCode::Internal,
            "/engine",
            format!("engine `{engine}` answered `preview` with {why}"),
            "the adapter breaks docs/adapter-api.md (`preview` → `{png_base64}`); report it to the adapter's maintainer",
        )
        .with_rule("host.preview-reply")
    };
    let text = reply
        .get("png_base64")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("no `png_base64` string".into()))?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(format!("`png_base64` that is not base64 ({e})")))?;
    check_png(&png, width, height).map_err(|why| bad(format!("an image that {why}")))?;
    Ok(png)
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Checks the PNG's frame: signature, an `IHDR` of the asked size first,
/// an `IEND` last, chunk lengths that add up. (The pixels are the engine's
/// business; the whole-system test decodes them.)
pub fn check_png(png: &[u8], width: u32, height: u32) -> Result<(), String> {
    if png.len() < 8 || png[..8] != PNG_SIGNATURE {
        return Err("is not a PNG (no PNG signature)".into());
    }
    let mut at = 8;
    let mut first = true;
    loop {
        if at + 12 > png.len() {
            return Err("is a truncated PNG (no IEND chunk)".into());
        }
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &png[at + 4..at + 8];
        let end = at
            .checked_add(12 + len)
            .filter(|&e| e <= png.len())
            .ok_or("is a truncated PNG (a chunk runs past the end)")?;
        if first {
            if kind != b"IHDR" || len != 13 {
                return Err("is a malformed PNG (IHDR is not the first chunk)".into());
            }
            let w = u32::from_be_bytes(png[at + 8..at + 12].try_into().expect("4 bytes"));
            let h = u32::from_be_bytes(png[at + 12..at + 16].try_into().expect("4 bytes"));
            if (w, h) != (width, height) {
                return Err(format!(
                    "is {w} x {h} px, not the {width} x {height} asked for"
                ));
            }
            first = false;
        }
        if kind == b"IEND" {
            return Ok(());
        }
        at = end;
    }
}

fn link_refusal(engine: &str, e: LinkError) -> CoreError {
    let remedy = match &e {
        LinkError::NotConnected(_) | LinkError::Disconnected(_) => {
            "start the engine's adapter and wait until list_engines shows it connected, then ask again"
        }
        LinkError::Timeout { .. } => {
            "ask for a smaller preview, or fewer objects; check list_engines for the engine's main-thread lag"
        }
        LinkError::Engine { code, .. } if code == "unsupported" => {
            "this engine renders no previews: name a Blender engine in `engine`"
        }
        _ => "check list_engines and the host log, then ask again",
    };
    CoreError::new(
        ErrorCode::Conflict,
        "/engine",
        format!("no preview from engine `{engine}`: {e}"),
        remedy,
    )
    .with_rule("host.preview")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_canonical::{ObjectKind, Op};

    fn engines() -> Vec<(String, String)> {
        vec![
            ("unity".into(), "unity".into()),
            ("blender".into(), "blender".into()),
        ]
    }

    fn scene() -> Scene {
        let mut s = Scene::default();
        s.apply_all(&[Op::CreateObject {
            id: Some("cube".into()),
            name: "Cube".into(),
            kind: ObjectKind::Mesh,
            primitive: None,
            parent: None,
            transform: None,
        }])
        .expect("create");
        s
    }

    fn request(w: u32, h: u32) -> PreviewRequest {
        PreviewRequest {
            engine: None,
            width: w,
            height: h,
            ids: None,
        }
    }

    /// A 2 x 1 PNG (IHDR, one IDAT, IEND) as zlib would store it.
    fn tiny_png(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend((data.len() as u32).to_be_bytes());
            out.extend(kind);
            out.extend(data);
            out.extend([0; 4]); // CRC: not checked by the host
        }
        let mut png = PNG_SIGNATURE.to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x00]);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    #[test]
    fn the_first_blender_engine_renders_by_default() {
        let (engine, body) = plan(&request(320, 240), &engines(), &scene()).unwrap();
        assert_eq!(engine, "blender");
        assert_eq!(
            body,
            CommandBody::Preview {
                width: 320,
                height: 240,
                ids: None
            }
        );
    }

    #[test]
    fn refusals_name_rule_field_and_remedy() {
        let err = plan(&request(0, 240), &engines(), &scene()).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("host.preview-size"));
        assert_eq!(err.field.as_deref(), Some("/width"));
        let err = plan(&request(320, 4096), &engines(), &scene()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("/height"));
        assert!(err.remedy.contains("320 x 240"), "{err}");

        let mut r = request(64, 64);
        r.engine = Some("maya".into());
        let err = plan(&r, &engines(), &scene()).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("host.preview-engine"));
        assert!(err.remedy.contains("unity, blender"), "{err}");
        let only_unity = vec![("unity".to_owned(), "unity".to_owned())];
        let err = plan(&request(64, 64), &only_unity, &scene()).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("host.preview-engine"));

        let mut r = request(64, 64);
        r.ids = Some(vec!["cube".into(), "ghost".into()]);
        let err = plan(&r, &engines(), &scene()).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("host.preview-ids"));
        assert_eq!(err.field.as_deref(), Some("/ids/1"));
        r.ids = Some(vec!["cube".into()]);
        assert!(plan(&r, &engines(), &scene()).is_ok());
    }

    #[test]
    fn the_reply_must_be_a_png_of_the_asked_size() {
        let b64 = |b: &[u8]| serde_json::json!({"png_base64": base64::engine::general_purpose::STANDARD.encode(b)});
        let png = tiny_png(2, 1);
        assert_eq!(decode_reply("blender", &b64(&png), 2, 1).unwrap(), png);
        let err = decode_reply("blender", &b64(&png), 4, 4).unwrap_err();
        assert_eq!(err.rule.as_deref(), Some("host.preview-reply"));
        assert!(err.message.contains("2 x 1 px"), "{err}");
        let err = decode_reply("blender", &b64(b"GIF89a......"), 2, 1).unwrap_err();
        assert!(err.message.contains("no PNG signature"), "{err}");
        let err = decode_reply("blender", &b64(&png[..png.len() - 12]), 2, 1).unwrap_err();
        assert!(err.message.contains("truncated"), "{err}");
        let err = decode_reply("blender", &serde_json::json!({"png": 1}), 2, 1).unwrap_err();
        assert!(err.message.contains("no `png_base64`"), "{err}");
        let err =
            decode_reply("blender", &serde_json::json!({"png_base64": "%%%"}), 2, 1).unwrap_err();
        assert!(err.message.contains("not base64"), "{err}");
    }
}
