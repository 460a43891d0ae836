//! Resolving a container's `user` (`uid`, `uid:gid`, `name`, `name:group`)
//! to numbers, reading the image's own `/etc/passwd` and `/etc/group` when a
//! name is involved, as Docker does.

use super::spec::ResolvedUser;

/// The image's account files, when they could be read.
#[derive(Debug, Clone, Default)]
pub struct AccountFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// Whether resolving `user` needs the image's account files: for any name,
/// and for a bare uid (whose primary group and supplementary groups come
/// from them, falling back to gid 0).
pub fn needs_files(user: &str) -> bool {
    match user.split_once(':') {
        Some((u, g)) => u.parse::<u32>().is_err() || g.parse::<u32>().is_err(),
        None => true,
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry> + '_ {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

/// (name, gid, members) per group line.
fn group_entries(text: &str) -> impl Iterator<Item = (String, u32, Vec<String>)> + '_ {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some((f[0].to_string(), f[2].parse().ok()?, members))
    })
}

/// Resolves `user`; an empty or absent user is root.
pub fn resolve(user: Option<&str>, files: &AccountFiles) -> Result<ResolvedUser, String> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok(ResolvedUser::default());
    };
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = files.passwd.as_deref().unwrap_or("");
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd)
            .find(|e| e.uid == uid)
            .unwrap_or(PasswdEntry {
                name: String::new(),
                uid,
                gid: 0,
            }),
        Err(_) => {
            if files.passwd.is_none() {
                return Err(format!(
                    "user {user_part:?} is a name but the image has no readable /etc/passwd; use a numeric uid"
                ));
            }
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| format!("no user {user_part:?} in the image's /etc/passwd"))?
        }
    };
    let groups = files.group.as_deref().unwrap_or("");
    let gid = match group_part {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(groups)
                .find(|(name, _, _)| name == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| format!("no group {g:?} in the image's /etc/group"))?,
        },
    };
    // Supplementary groups apply only when the group was not forced.
    let additional_gids = if group_part.is_none() && !entry.name.is_empty() {
        group_entries(groups)
            .filter(|(_, g, members)| *g != gid && members.contains(&entry.name))
            .map(|(_, g, _)| g)
            .collect()
    } else {
        Vec::new()
    };
    Ok(ResolvedUser {
        uid: entry.uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> AccountFiles {
        AccountFiles {
            passwd: Some(
                "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n".into(),
            ),
            group: Some("root:x:0:\nwww:x:33:\nadm:x:4:www,other\n".into()),
        }
    }

    #[test]
    fn numeric_users_need_no_files() {
        assert!(!needs_files("1000:1000"));
        assert!(needs_files("1000"));
        assert!(needs_files("www"));
        let none = AccountFiles::default();
        assert_eq!(
            resolve(Some("1000:50"), &none).unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 50,
                additional_gids: vec![]
            }
        );
        assert_eq!(resolve(Some("1000"), &none).unwrap().gid, 0);
        assert_eq!(resolve(None, &none).unwrap(), ResolvedUser::default());
    }

    #[test]
    fn names_come_from_the_images_files() {
        assert_eq!(
            resolve(Some("www"), &files()).unwrap(),
            ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![4]
            }
        );
        assert_eq!(resolve(Some("33"), &files()).unwrap().gid, 33);
        assert_eq!(resolve(Some("www:adm"), &files()).unwrap().gid, 4);
        assert!(resolve(Some("nobody"), &files())
            .unwrap_err()
            .contains("no user"));
        assert!(resolve(Some("www"), &AccountFiles::default())
            .unwrap_err()
            .contains("numeric"));
    }
}
