#include "reformat/ledger.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mf::reformat {
namespace {

LedgerRow row(const std::string& id) {
    LedgerRow r;
    r.sample_id = id;
    r.method = "mllm-unblinded";
    r.model = "m";
    r.prompt_version = "unblinded-v1";
    r.key = request_key(r.sample_id, r.method, r.model, r.prompt_version, {"aa", "bb"});
    r.sample_json = "{\"id\":\"" + id + "\"}";
    return r;
}

Attempt reply(const std::string& content, int64_t in = 10, int64_t out = 5) {
    Attempt a;
    a.request_summary = "{\"text\":\"prompt\"}";
    a.response_raw = "{\"choices\":[]}";
    a.content = content;
    a.prompt_tokens = in;
    a.completion_tokens = out;
    a.cost = 0.5;
    a.http_attempts = 2;
    return a;
}

TEST(Ledger, KeyDependsOnEveryPart) {
    std::string k = request_key("s", "m", "model", "v1", {"h1", "h2"});
    EXPECT_EQ(k.size(), 64u);
    EXPECT_EQ(k, request_key("s", "m", "model", "v1", {"h1", "h2"}));
    EXPECT_NE(k, request_key("s2", "m", "model", "v1", {"h1", "h2"}));
    EXPECT_NE(k, request_key("s", "m2", "model", "v1", {"h1", "h2"}));
    EXPECT_NE(k, request_key("s", "m", "model2", "v1", {"h1", "h2"}));
    EXPECT_NE(k, request_key("s", "m", "model", "v2", {"h1", "h2"}));
    EXPECT_NE(k, request_key("s", "m", "model", "v1", {"h2", "h1"}));  // order matters
    EXPECT_NE(k, request_key("s", "m", "model", "v1", {"h1"}));
    // Field boundaries cannot be confused.
    EXPECT_NE(request_key("ab", "c", "", "", {}), request_key("a", "bc", "", "", {}));
}

TEST(Ledger, StateMachineAndPersistence) {
    test::TempDir dir;
    auto path = dir / "ledger.sqlite";
    LedgerRow a = row("a"), b = row("b"), c = row("c");
    {
        auto l = Ledger::open(path);
        ASSERT_TRUE(l.ok()) << l.status().to_string();
        auto& L = **l;
        ASSERT_TRUE(L.begin().ok());
        EXPECT_TRUE(*L.add(a));
        EXPECT_TRUE(*L.add(b));
        EXPECT_TRUE(*L.add(c));
        EXPECT_FALSE(*L.add(a));  // same key: ignored
        ASSERT_TRUE(L.commit().ok());
        auto pend = L.next_pending(10);
        ASSERT_TRUE(pend.ok());
        ASSERT_EQ(pend->size(), 3u);
        EXPECT_EQ((*pend)[0].sample_id, "a");  // insertion order
        ASSERT_TRUE(L.mark_in_flight({a.key, b.key, c.key}).ok());
        EXPECT_EQ(L.next_pending(10)->size(), 0u);

        ASSERT_TRUE(L.record_done(a.key, reply("good"), "{\"description\":\"d\"}").ok());
        ASSERT_TRUE(L.record_reask(b.key, reply("bad"), "no_json", "no JSON object").ok());
        // c stays in_flight: the process "dies" here.
    }
    {
        auto l = Ledger::open(path);
        ASSERT_TRUE(l.ok());
        auto& L = **l;
        auto counts = *L.count_by_state();
        EXPECT_EQ(counts["done"], 1);
        EXPECT_EQ(counts["pending"], 1);
        EXPECT_EQ(counts["in_flight"], 1);
        EXPECT_EQ(*L.reset_in_flight(), 1);
        auto pend = *L.next_pending(10);
        ASSERT_EQ(pend.size(), 2u);  // b (re-ask) and c (reset); a is done and never returned
        EXPECT_EQ(pend[0].sample_id, "b");
        EXPECT_EQ(pend[0].attempts, 1);
        EXPECT_EQ(pend[0].last_error, "no JSON object");
        EXPECT_EQ(pend[1].sample_id, "c");
        EXPECT_EQ(pend[1].attempts, 0);

        auto ra = *L.get(a.key);
        ASSERT_TRUE(ra.has_value());
        EXPECT_EQ(ra->state, RowState::kDone);
        EXPECT_EQ(ra->content, "good");
        EXPECT_EQ(ra->output_json, "{\"description\":\"d\"}");
        EXPECT_EQ(ra->prompt_tokens, 10);
        EXPECT_EQ(ra->http_attempts, 2);

        ASSERT_TRUE(L.mark_in_flight({b.key}).ok());
        ASSERT_TRUE(
            L.record_failed(b.key, reply("still bad", 20, 7), "no_json", "gave up", true).ok());
        auto rb = *L.get(b.key);
        EXPECT_EQ(rb->state, RowState::kFailed);
        EXPECT_EQ(rb->reason, "no_json");
        EXPECT_EQ(rb->attempts, 2);
        EXPECT_EQ(rb->prompt_tokens, 30);  // summed over both replies
        EXPECT_EQ(rb->completion_tokens, 12);
        EXPECT_DOUBLE_EQ(rb->cost, 1.0);
        EXPECT_EQ(rb->content, "still bad");  // raw text kept
        auto att = *L.attempts(b.key);
        ASSERT_EQ(att.size(), 2u);
        EXPECT_EQ(att[0].outcome, "reask");
        EXPECT_EQ(att[1].outcome, "failed");

        // A transport failure is not final: a new run may retry it.
        ASSERT_TRUE(L.mark_in_flight({c.key}).ok());
        Attempt none;
        ASSERT_TRUE(L.record_failed(c.key, none, "request_failed", "503", false).ok());
        EXPECT_EQ(L.get(c.key)->value().attempts, 0);
        EXPECT_EQ(*L.reset_failed({"request_failed"}), 1);
        EXPECT_EQ(L.get(c.key)->value().state, RowState::kPending);
        EXPECT_EQ(L.get(b.key)->value().state, RowState::kFailed);  // validation failure stays
    }
}

TEST(Ledger, MarkPendingOnlyFromInFlight) {
    test::TempDir dir;
    auto l = std::move(Ledger::open(dir / "l.sqlite")).value();
    LedgerRow a = row("a");
    ASSERT_TRUE(l->add(a).ok());
    ASSERT_TRUE(l->mark_in_flight({a.key}).ok());
    ASSERT_TRUE(l->record_done(a.key, reply("x"), "{}").ok());
    ASSERT_TRUE(l->mark_pending(a.key).ok());  // a cancelled callback after done: no effect
    EXPECT_EQ(l->get(a.key)->value().state, RowState::kDone);
}

TEST(Ledger, ReadOnlyOpenOfMissingFileFails) {
    test::TempDir dir;
    auto l = Ledger::open(dir / "nope.sqlite", true);
    EXPECT_FALSE(l.ok());
}

TEST(Ledger, UsesWal) {
    test::TempDir dir;
    {
        auto l = std::move(Ledger::open(dir / "l.sqlite")).value();
        ASSERT_TRUE(l->add(row("a")).ok());
        EXPECT_TRUE(std::filesystem::exists(dir / "l.sqlite-wal"));
    }
}

}  // namespace
}  // namespace mf::reformat
