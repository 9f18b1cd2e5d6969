//! The chat: citizens and staff post comments while the meeting is live; moderators hide them.
//! Staff see every comment with its author; citizens see the visible ones, and a hidden one as
//! removed.

use crate::command::{Context, Permission, Rule, one};
use crate::event::{Change, EventKind};
use crate::fanout::{Audience, Class, Fanout, Target};
use crate::ids::{CommentId, ParticipantId, Timestamp};
use crate::meeting::{Comment, Meeting, MeetingStatus};
use crate::rejection::Rejection;
use crate::text::{TextKind, clean};
use crate::view::CommentView;
use crate::wire::EventFrame;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostComment {
    pub text: String,
}

impl Rule for PostComment {
    const PERMISSION: Permission = Permission::Anyone;

    fn decide(&self, m: &Meeting, cx: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        m.check_may_post(cx.actor, cx.now)?;
        let staff = cx.actor.role.is_staff();
        if m.status != MeetingStatus::Live && !staff {
            return Err(Rejection::NotLive);
        }
        if !m.chat_open && !staff {
            return Err(Rejection::ChatClosed);
        }
        let text = clean(TextKind::Comment, &self.text)?;
        if m.comments.len() >= m.limits.max_comments {
            return Err(Rejection::MeetingFull {
                max: m.limits.max_comments,
            });
        }
        let held = if staff { None } else { m.filter_hit(&text) };
        one(CommentPosted {
            comment: m.next_comment_id(),
            text,
            author_name: m.name_of(&cx.actor.participant),
            held,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HideComment {
    pub comment: CommentId,
}

impl Rule for HideComment {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let c = m
            .comments
            .get(&self.comment)
            .ok_or(Rejection::UnknownComment)?;
        if c.hidden {
            return Err(Rejection::InvalidState("the comment is already hidden"));
        }
        one(CommentHidden {
            comment: self.comment,
        })
    }
}

/// Show a hidden comment again: the undo of `hide_comment`, and the release of a comment the
/// word filter held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnhideComment {
    pub comment: CommentId,
}

impl Rule for UnhideComment {
    const PERMISSION: Permission = Permission::Moderators;

    fn decide(&self, m: &Meeting, _: &Context<'_>) -> Result<Vec<EventKind>, Rejection> {
        let c = m
            .comments
            .get(&self.comment)
            .ok_or(Rejection::UnknownComment)?;
        if !c.hidden {
            return Err(Rejection::InvalidState("the comment is not hidden"));
        }
        one(CommentUnhidden {
            comment: self.comment,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentUnhidden {
    pub comment: CommentId,
}

impl Change for CommentUnhidden {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        if let Some(c) = m.comments.get_mut(&self.comment) {
            c.hidden = false;
            c.held = None;
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        comment_changed(out, self.comment);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentPosted {
    pub comment: CommentId,
    pub text: String,
    /// The author's display name when posting, kept for the record.
    pub author_name: Option<String>,
    /// The filter word the text matched: the comment waits for a moderator, unpublished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl Change for CommentPosted {
    fn apply(&self, m: &mut Meeting, by: &ParticipantId, at: Timestamp) {
        m.participants.entry(by.clone()).or_default().last_post_at = Some(at);
        m.comments.insert(
            self.comment,
            Comment {
                id: self.comment,
                author: by.clone(),
                author_name: self.author_name.clone(),
                text: self.text.clone(),
                at,
                hidden: self.held.is_some(),
                held: self.held.clone(),
            },
        );
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        let known = if self.held.is_some() {
            // Held: only staff learn of it (citizens never had it, so nothing to remove).
            let comment = out.meeting.comments.get(&self.comment);
            let frame = EventFrame {
                comment: comment.map(|c| CommentView::of(c, true)),
                ..out.frame()
            };
            out.send(Audience::new(Class::Staff, Target::Any), frame);
            comment.is_some()
        } else {
            comment_changed(out, self.comment)
        };
        if known {
            let by = out.by().clone();
            out.staff_learn_of(&by);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentHidden {
    pub comment: CommentId,
}

impl Change for CommentHidden {
    fn apply(&self, m: &mut Meeting, _: &ParticipantId, _: Timestamp) {
        if let Some(c) = m.comments.get_mut(&self.comment) {
            c.hidden = true;
        }
    }

    fn fanout(&self, out: &mut Fanout<'_>) {
        comment_changed(out, self.comment);
    }
}

/// Staff get the comment with its author; citizens the comment, or its removal once hidden.
/// False if the comment is unknown (nothing was sent).
fn comment_changed(out: &mut Fanout<'_>, id: CommentId) -> bool {
    let Some(c) = out.meeting.comments.get(&id) else {
        return false;
    };
    let staff = EventFrame {
        comment: Some(CommentView::of(c, true)),
        ..out.frame()
    };
    let public = if c.hidden {
        EventFrame {
            comment_removed: Some(c.id),
            ..out.frame()
        }
    } else {
        EventFrame {
            comment: Some(CommentView::of(c, false)),
            ..out.frame()
        }
    };
    out.send(Audience::new(Class::Staff, Target::Any), staff);
    out.send(Audience::new(Class::Citizens, Target::Any), public);
    true
}
