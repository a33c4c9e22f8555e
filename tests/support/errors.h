#pragma once
// Test helpers for error paths: the message of the exception a call throws.
#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace statex::testing {

// Runs fn, expects it to throw E, returns the message (records a failure otherwise).
template <class E, class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type, message: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

}  // namespace statex::testing

#define EXPECT_CONTAINS(hay, needle) \
  EXPECT_NE(std::string(hay).find(needle), std::string::npos) << "message: " << (hay)
