//! Conversations: questions that may lean on the ones before them.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use pith_core::Conversation;

use crate::ask::{Request, pith_answer, pith_ask_options, pith_text_fn};
use crate::cancel::pith_cancel;
use crate::convert::{free_handle, into_handle, obj_arg};
use crate::engine::pith_engine;
use crate::status::{guard, guard_value, pith_status};

/// The questions asked so far in one conversation; freed with pith_conversation_free.
/// One pith_chat at a time uses it (a second waits).
pub struct pith_conversation(Mutex<Conversation>);

/// A new, empty conversation.
#[unsafe(no_mangle)]
pub extern "C" fn pith_conversation_new() -> *mut pith_conversation {
    guard_value(std::ptr::null_mut(), || {
        into_handle(pith_conversation(Mutex::new(Conversation::new())))
    })
}

/// Forgets every question asked: the next one starts afresh. NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_conversation_reset(conversation: *const pith_conversation) {
    guard_value((), || {
        if let Some(c) = unsafe { conversation.as_ref() } {
            lock(c).reset();
        }
    })
}

/// Frees a conversation; NULL is ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pith_conversation_free(conversation: *mut pith_conversation) {
    guard_value((), || unsafe { free_handle(conversation) })
}

/// Answers `question` as the next question of `conversation`, as pith_ask does, but a
/// question that leans on the one before it ("and when was it built?") is asked with
/// the words it leaves out carried over from that question. A cancelled or failed
/// question is not added to the conversation.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn pith_chat(
    engine: *const pith_engine,
    conversation: *const pith_conversation,
    question: *const c_char,
    options: *const pith_ask_options,
    on_text: pith_text_fn,
    user_data: *mut c_void,
    cancel: *const pith_cancel,
    answer_out: *mut *mut pith_answer,
) -> pith_status {
    let request = Request {
        engine,
        question,
        options,
        on_text,
        user_data,
        cancel,
        answer_out,
    };
    guard(|| unsafe {
        request.run(|engine, question, options, on_text, cancel| {
            let conversation = obj_arg(conversation, "conversation")?;
            engine.chat(&mut lock(conversation), question, options, on_text, cancel)
        })
    })
}

/// The conversation, even after a panic in another chat (its turns stay consistent:
/// a turn is added only once answered).
fn lock(c: &pith_conversation) -> std::sync::MutexGuard<'_, Conversation> {
    c.0.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
