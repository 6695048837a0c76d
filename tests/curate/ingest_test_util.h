// Helpers for the ingest tests: run an adapter into memory, read stage outputs.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "curate/ingest.h"
#include "test_util.h"

namespace mf::curate::testing {

// Collects what an adapter reports.
struct Collect : IngestSink {
    std::vector<Sample> samples;
    std::vector<Reject> rejects;
    std::vector<std::string> order;  // "S:<id>" / "R:<reason>" in emission order
    uint64_t bytes = 0;
    size_t with_json = 0;  // samples that came with their JSON
    void on_sample(Sample&& s) override {
        order.push_back("S:" + s.id);
        samples.push_back(std::move(s));
    }
    // Adapters that serialise on worker threads must hand over exactly sample_to_json(s).
    void on_sample_json(Sample&& s, std::string&& json) override {
        EXPECT_EQ(json, sample_to_json(s));
        ++with_json;
        on_sample(std::move(s));
    }
    void on_reject(Reject&& r) override {
        order.push_back("R:" + r.reason);
        rejects.push_back(std::move(r));
    }
    void on_input_bytes(uint64_t n) override { bytes += n; }

    const Sample* find(const std::string& id) const {
        for (const auto& s : samples)
            if (s.id == id) return &s;
        return nullptr;
    }
    const Reject* find_reject(const std::string& reason) const {
        for (const auto& r : rejects)
            if (r.reason == reason) return &r;
        return nullptr;
    }
    size_t count_reason(const std::string& reason) const {
        size_t n = 0;
        for (const auto& r : rejects)
            n += r.reason == reason;
        return n;
    }
};

inline Collect ingest_collect(const std::string& format, const std::filesystem::path& input,
                              IngestOptions opt = {}) {
    Collect c;
    auto ing = make_ingestor(format, opt);
    EXPECT_TRUE(ing.ok()) << ing.status().to_string();
    if (!ing.ok()) return c;
    Status st = (*ing)->run(input, c);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return c;
}

inline std::vector<Sample> read_samples(const std::filesystem::path& jsonl) {
    std::vector<Sample> out;
    for (const auto& line : test::read_lines(jsonl)) {
        auto s = sample_from_json(line);
        EXPECT_TRUE(s.ok()) << s.status().to_string() << " in " << line;
        if (s.ok()) out.push_back(*s);
    }
    return out;
}

inline std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& jsonl) {
    std::vector<nlohmann::json> out;
    for (const auto& line : test::read_lines(jsonl))
        out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace mf::curate::testing
