//! Nicknames and alternative spellings of given names common in the UK.
//!
//! Owns a compact hand-curated table: each line is a group of names that can stand for the same
//! person (William/Bill/Will, Margaret/Peggy, Mohammed/Muhammad/Mohammad, Catherine/Katherine/
//! Kathryn, ...). A name may sit in several groups (Chris is Christopher or Christine). Does not
//! normalise text (callers pass normalised lower-case names) and does not weigh the evidence.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The groups, one per line; the first name of a line is the formal name.
const GROUPS: &[&str] = &[
    "william bill billy will willie willy liam wills",
    "robert bob bobby rob robbie robby bert",
    "richard dick rick ricky rich richie",
    "margaret peggy maggie meg marge margie madge greta rita mags",
    "elizabeth liz lizzie lizzy beth betty bess bessie eliza libby lisa elspeth betsy",
    "catherine katherine kathryn katharine kathrine cathryn catharine kate katie kathy cathy kat kay kitty caitlin",
    "kathleen kath kathy kay",
    "john jon johnny jonny jack jackie",
    "jonathan jon jonny jonty johnathan",
    "james jim jimmy jamie jimmie",
    "edward ed eddie eddy ted teddy ned",
    "thomas tom tommy",
    "anthony antony tony",
    "christopher chris kit christoper kristopher",
    "christine christina chris chrissie chrissy kirsty kristina kristine",
    "steven stephen steve stevie stefan stephan",
    "stephanie steph stefanie",
    "michael mike mick mickey micky mikey michel",
    "mohammed muhammad mohammad muhammed mohamed mohamad mohammod mahomed mohd muhammed mahmood",
    "ahmed ahmad ahmet",
    "yusuf yousef yousuf yusef yousif",
    "hussain hussein husain hossain",
    "daniel dan danny",
    "david dave davy davey dai",
    "joseph joe joey jo",
    "josephine jo josie jose",
    "samuel sam sammy",
    "samantha sam sammy",
    "alexander alex alec alexandre alistair alasdair alastair sandy sasha",
    "alexandra alex alexa alexis sandra sandy sasha",
    "andrew andy drew",
    "benjamin ben benny benji",
    "charles charlie chas chuck charley",
    "charlotte charlie lottie lotte",
    "frederick fred freddie freddy frederic",
    "alfred alf alfie fred freddie",
    "henry harry hal hank",
    "harold harry hal",
    "patrick pat paddy",
    "patricia pat patty tricia trish",
    "peter pete",
    "philip phillip phil pip",
    "philippa phillipa pippa pip",
    "nicholas nick nicky nic nico",
    "nicola nicole nikki nicky",
    "susan sue susie suzy suzanne susanne",
    "sarah sara sally",
    "mary molly polly mollie mae maria",
    "anne ann annie anna",
    "hannah hanna",
    "jennifer jenny jen jenna",
    "jessica jess jessie",
    "rebecca becky becca rebekah",
    "victoria vicky vickie vikki tori",
    "deborah debra debbie deb debby",
    "dorothy dot dottie dolly",
    "helen helena ellen nell nellie",
    "eleanor elinor eleanore ellie nell nora",
    "gerald gerry jerry",
    "gerard gerry",
    "matthew mathew matt matty",
    "timothy tim timmy",
    "kenneth ken kenny",
    "ronald ron ronnie",
    "donald don donnie",
    "leonard len lenny leo",
    "lawrence laurence larry laurie",
    "terence terrance terry",
    "raymond ray",
    "gregory greg",
    "jeffrey geoffrey jeff geoff jeffery",
    "joshua josh",
    "nathan nathaniel nat nate",
    "natalie nat natasha tash",
    "zachary zak zack zach",
    "oliver ollie olly",
    "abigail abbie abby",
    "amelia millie milly",
    "emily emmy em",
    "emma em",
    "isabel isabelle isobel izzy bella isabella",
    "jacqueline jackie jacqui",
    "joanne joanna jo joan",
    "louise lou louisa",
    "louis lewis lou",
    "madeleine madeline maddie madelyn",
    "pamela pam",
    "penelope penny",
    "rosemary rose rosie",
    "theresa teresa tess tessa terri",
    "valerie val",
    "sean shaun shawn",
    "ian iain",
    "neil neal niall",
    "alan allan allen",
    "brian bryan",
    "graham graeme",
    "carl karl",
    "claire clare",
    "aaron aron",
    "frances fran fanny",
    "francis frank frankie",
    "albert bert bertie al",
    "arthur art artie",
    "bernard bernie",
    "stuart stewart stu",
    "dominic dom",
    "douglas doug dougie",
    "colin col",
    "malcolm mal",
    "reginald reg reggie",
    "sidney sydney sid",
    "walter walt wally",
    "vincent vince vinny",
    "barbara barb babs",
    "caroline carol carrie carolyn",
    "florence flo florrie",
    "gillian jill gill",
    "jane janey jayne",
    "janet jan",
    "judith judy jude",
    "julia julie",
    "michelle shelley",
    "sophie sophia",
    "veronica ronnie",
    "vivian vivien viv",
    "siobhan shevaun",
    "zoe zoey",
];

/// Name → the groups (indexes into [`GROUPS`]) it belongs to.
static INDEX: LazyLock<HashMap<&'static str, Vec<u16>>> = LazyLock::new(|| {
    let mut index: HashMap<&'static str, Vec<u16>> = HashMap::new();
    for (g, line) in GROUPS.iter().enumerate() {
        for name in line.split_whitespace() {
            let groups = index.entry(name).or_default();
            let g = g as u16;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    index
});

/// Up to three group ids of a normalised given name, `0` meaning none (ids are group index + 1).
pub fn groups(name: &str) -> [u16; 3] {
    let mut out = [0u16; 3];
    if let Some(gs) = INDEX.get(name) {
        for (slot, g) in out.iter_mut().zip(gs) {
            *slot = g + 1;
        }
    }
    out
}

/// Whether two group sets share a group.
pub fn share_group(a: &[u16; 3], b: &[u16; 3]) -> bool {
    a.iter().any(|g| *g != 0 && b.contains(g))
}

/// Whether two normalised given names are nicknames or alternative spellings of each other.
pub fn are_alternatives(a: &str, b: &str) -> bool {
    share_group(&groups(a), &groups(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_examples() {
        for (a, b) in [
            ("bill", "william"),
            ("peggy", "margaret"),
            ("jon", "john"),
            ("mohammed", "muhammad"),
            ("mohammad", "muhammad"),
            ("steven", "stephen"),
            ("catherine", "katherine"),
            ("kathryn", "catherine"),
            ("chris", "christine"),
            ("chris", "christopher"),
        ] {
            assert!(are_alternatives(a, b), "{a} {b}");
            assert!(are_alternatives(b, a), "{b} {a}");
        }
        assert!(!are_alternatives("christopher", "christine"));
        assert!(!are_alternatives("john", "james"));
        assert!(
            !are_alternatives("zebedee", "zebedee"),
            "unknown names share no group"
        );
    }

    #[test]
    fn no_name_is_in_more_than_three_groups() {
        for (name, gs) in INDEX.iter() {
            assert!(gs.len() <= 3, "{name} in {} groups", gs.len());
        }
    }
}
