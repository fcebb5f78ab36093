//! Realistic sample data shared by the micro-benchmarks.

use protocol::{Nickname, UserId};

const FAMILY: [&str; 10] = [
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
];
const GIVEN: [&str; 10] = [
    "花子",
    "太郎",
    "さくら",
    "翔太",
    "美咲",
    "大輔",
    "ゆい",
    "健一",
    "あおい",
    "蓮",
];

/// Learner `i`'s nickname: a Japanese name, unique for every `i`.
pub fn nickname(i: usize) -> Nickname {
    Nickname::from(format!(
        "{}{}{}",
        FAMILY[i % 10],
        GIVEN[(i / 10) % 10],
        i / 100
    ))
}

/// Learner `i`'s account id.
pub fn user(i: usize) -> UserId {
    UserId::from(format!("usr_{:08x}", 0x5eed_0000 + i))
}
