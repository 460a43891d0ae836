//! AWS CLI v2 pagination for the list commands: every page by default;
//! `--max-items N` stops after N items and returns a `NextToken` that
//! `--starting-token` resumes from; `--page-size` sets each call's max_results;
//! `--no-paginate` makes one call and returns the service's own `nextToken`.
//!
//! Items are ARNs (strings) for most commands; list-attributes pages ECS
//! `Attribute` objects, so [`Page`] and [`Listing`] take the item type.
//!
//! Like botocore, a `NextToken` is base64 of `{"nextToken": <service token>,
//! "boto_truncate_amount": <items of that page already returned>}`; a starting
//! token that does not decode that way is passed to the service as it is.

use anyhow::Result;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::future::Future;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct PageArgs {
    /// Stop after this many items and print a NextToken.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_items: Option<u32>,
    /// A NextToken from an earlier output to resume from.
    #[arg(long)]
    pub starting_token: Option<String>,
    /// Items per service call.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    /// Make a single call and print the service's nextToken.
    #[arg(long)]
    pub no_paginate: bool,
}

/// One page as the service returned it.
pub struct Page<T = String> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_token: String,
}

/// The items collected and the token to print, under the key it goes by.
#[derive(Debug, PartialEq, Eq)]
pub struct Listing<T = String> {
    pub items: Vec<T>,
    pub token: Option<(&'static str, String)>,
}

impl<T: serde::Serialize> Listing<T> {
    /// `{"<items_key>": [...], "NextToken": "..."}`.
    pub fn to_json(&self, items_key: &str) -> Value {
        let mut out = Map::new();
        out.insert(items_key.to_string(), json!(self.items));
        if let Some((key, token)) = &self.token {
            out.insert((*key).to_string(), Value::String(token.clone()));
        }
        Value::Object(out)
    }
}

fn encode(service_token: &str, truncate: usize) -> String {
    let doc = if truncate == 0 {
        json!({"nextToken": service_token})
    } else {
        json!({"nextToken": service_token, "boto_truncate_amount": truncate})
    };
    STANDARD.encode(doc.to_string())
}

/// The service token and the number of its page's items to skip.
fn decode(token: &str) -> (String, usize) {
    let doc: Option<Value> = STANDARD
        .decode(token)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match doc {
        Some(Value::Object(m)) if m.contains_key("nextToken") => {
            let service = m
                .get("nextToken")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let skip = m
                .get("boto_truncate_amount")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (service, usize::try_from(skip).unwrap_or(usize::MAX))
        }
        _ => (token.to_string(), 0),
    }
}

/// Runs `fetch(next_token, max_results)` as often as `args` asks.
pub async fn collect<T, F, Fut>(args: &PageArgs, mut fetch: F) -> Result<Listing<T>>
where
    F: FnMut(String, u32) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let page_size = args.page_size.unwrap_or(0);
    if args.no_paginate {
        let page = fetch(args.starting_token.clone().unwrap_or_default(), page_size).await?;
        let token = (!page.next_token.is_empty()).then_some(("nextToken", page.next_token));
        return Ok(Listing {
            items: page.items,
            token,
        });
    }
    let max = args.max_items.map(|m| m as usize);
    let (mut token, mut skip) = args
        .starting_token
        .as_deref()
        .map(decode)
        .unwrap_or_default();
    let mut items = Vec::new();
    loop {
        let page = fetch(token.clone(), page_size).await?;
        for (i, item) in page.items.into_iter().enumerate().skip(skip) {
            if max.is_some_and(|m| items.len() >= m) {
                return Ok(Listing {
                    items,
                    token: Some(("NextToken", encode(&token, i))),
                });
            }
            items.push(item);
        }
        skip = 0;
        if page.next_token.is_empty() {
            return Ok(Listing { items, token: None });
        }
        if max.is_some_and(|m| items.len() >= m) {
            return Ok(Listing {
                items,
                token: Some(("NextToken", encode(&page.next_token, 0))),
            });
        }
        anyhow::ensure!(
            page.next_token != token,
            "the controller returned the same page token twice"
        );
        token = page.next_token;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service holding items "0".."n" that pages by index tokens.
    async fn list(args: &PageArgs, n: usize) -> Result<Listing> {
        collect(args, |token, max| async move {
            let start: usize = if token.is_empty() { 0 } else { token.parse()? };
            let size = if max == 0 { 100 } else { max as usize };
            let end = (start + size).min(n);
            let next_token = if end < n {
                end.to_string()
            } else {
                String::new()
            };
            Ok(Page {
                items: (start..end).map(|i| i.to_string()).collect(),
                next_token,
            })
        })
        .await
    }

    fn strings(r: std::ops::Range<usize>) -> Vec<String> {
        r.map(|i| i.to_string()).collect()
    }

    #[tokio::test]
    async fn every_page_by_default() -> Result<()> {
        let l = list(
            &PageArgs {
                page_size: Some(2),
                ..PageArgs::default()
            },
            5,
        )
        .await?;
        assert_eq!(
            l,
            Listing {
                items: strings(0..5),
                token: None
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn max_items_and_starting_token_resume_mid_page() -> Result<()> {
        let args = PageArgs {
            page_size: Some(2),
            max_items: Some(3),
            ..PageArgs::default()
        };
        let first = list(&args, 7).await?;
        assert_eq!(first.items, strings(0..3));
        let (key, token) = first
            .token
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no token"))?;
        assert_eq!(key, "NextToken");
        let second = list(
            &PageArgs {
                starting_token: Some(token),
                ..args.clone()
            },
            7,
        )
        .await?;
        assert_eq!(second.items, strings(3..6));
        let (_, token) = second.token.ok_or_else(|| anyhow::anyhow!("no token"))?;
        let third = list(
            &PageArgs {
                starting_token: Some(token),
                ..args
            },
            7,
        )
        .await?;
        assert_eq!(
            third,
            Listing {
                items: strings(6..7),
                token: None
            }
        );
        Ok(())
    }

    #[tokio::test]
    async fn max_items_at_a_page_end_and_raw_tokens() -> Result<()> {
        let args = PageArgs {
            page_size: Some(2),
            max_items: Some(2),
            ..PageArgs::default()
        };
        let l = list(&args, 3).await?;
        assert_eq!(l.token, Some(("NextToken", encode("2", 0))));
        let raw = PageArgs {
            starting_token: Some("1".into()),
            ..PageArgs::default()
        };
        assert_eq!(list(&raw, 3).await?.items, strings(1..3));
        let one = PageArgs {
            page_size: Some(2),
            no_paginate: true,
            ..PageArgs::default()
        };
        assert_eq!(
            list(&one, 3).await?,
            Listing {
                items: strings(0..2),
                token: Some(("nextToken", "2".into()))
            }
        );
        Ok(())
    }
}
