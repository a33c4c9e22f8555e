#pragma once
namespace statex {
constexpr int kIgnoreLabel = -100;  // target of unlabelled positions (PyTorch ignore_index)
}  // namespace statex
