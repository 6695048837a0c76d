// Filters: one keep/drop decision per sample, run by run_map_stage(). Each filter is const and
// thread-safe after construction. Reason codes are stable snake_case strings documented in
// docs/filter.md (they are counted in stats.json and the data card).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "curate/sample.h"
#include "curate/stage.h"

namespace mf::curate {

class Filter {
  public:
    virtual ~Filter() = default;
    virtual std::string_view name() const = 0;
    virtual Verdict apply(const Sample& sample) const = 0;
};

}  // namespace mf::curate
