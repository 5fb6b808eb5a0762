// SPDX-License-Identifier: Apache-2.0
// Remote model config parsing: endpoint forms and schemes, when TLS is on,
// and a TF Serving remote's tensors from the config.
#include "backend/remote/remote_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ortserve::backend::remote {
namespace {

using Scheme = EndpointAddress::Scheme;

TEST(RemoteEndpointTest, ParsesHostPortWithOrWithoutAScheme) {
  struct Case {
    std::string text, host;
    uint16_t port;
    Scheme scheme;
  };
  for (const Case& c : {Case{"127.0.0.1:8000", "127.0.0.1", 8000, Scheme::kNone},
                        Case{"triton.internal:8001", "triton.internal", 8001, Scheme::kNone},
                        Case{"[::1]:9000", "::1", 9000, Scheme::kNone},
                        Case{"http://a.example:80", "a.example", 80, Scheme::kHttp},
                        Case{"https://a.example:443", "a.example", 443, Scheme::kHttps},
                        Case{"https://a.example:443/", "a.example", 443, Scheme::kHttps},
                        Case{"https://[fe80::2]:8443", "fe80::2", 8443, Scheme::kHttps}}) {
    absl::StatusOr<EndpointAddress> parsed = ParseEndpoint(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
    EXPECT_EQ(parsed->host, c.host) << c.text;
    EXPECT_EQ(parsed->port, c.port) << c.text;
    EXPECT_EQ(parsed->scheme, c.scheme) << c.text;
  }
}

TEST(RemoteEndpointTest, RefusesWhatIsNotAnEndpointNamingIt) {
  for (const std::string& text : std::vector<std::string>{
           "", "host", ":80", "host:", "host:0", "host:65536", "host:80x", "grpc://host:80", "https://host:80/v2",
        "user@host:80", "::1:80", "host name:80", "https://", "host:-1", std::string("ho\0st:80", 8)}) {
    absl::StatusOr<EndpointAddress> parsed = ParseEndpoint(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("remote endpoint '"), std::string_view::npos);
  }
}

TEST(RemoteEndpointTest, TlsIsOnForHttpsOrATlsBlockAndAnExplicitHttpConflictsWithTheBlock) {
  config::ModelRemote plain;
  config::ModelRemote with_tls;
  with_tls.mutable_tls()->set_ca_file("/ca.pem");
  auto uses = [](std::string_view text, const config::ModelRemote& remote) {
    return UsesTls(*ParseEndpoint(text), text, remote);
  };
  EXPECT_FALSE(*uses("h:1", plain));
  EXPECT_FALSE(*uses("http://h:1", plain));
  EXPECT_TRUE(*uses("https://h:1", plain));
  EXPECT_TRUE(*uses("h:1", with_tls));
  EXPECT_TRUE(*uses("https://h:1", with_tls));
  absl::StatusOr<bool> conflict = uses("http://h:1", with_tls);
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.status().message().find("http://h:1"), std::string_view::npos);
}

TEST(RemoteSignatureTest, ComesFromTheConfigWithTheBatchDimension) {
  config::ModelConfig config;
  config.set_max_batch_size(4);
  auto* input = config.add_input();
  input->set_name("x");
  input->set_data_type(config::TYPE_FP32);
  input->add_dims(2);
  auto* output = config.add_output();
  output->set_name("y");
  output->set_data_type(config::TYPE_INT64);
  output->add_dims(3);
  absl::StatusOr<ModelSignature> signature = SignatureFromConfig(config);
  ASSERT_TRUE(signature.ok()) << signature.status();
  ASSERT_EQ(signature->inputs.size(), 1u);
  EXPECT_EQ(signature->inputs[0].dims, (Shape{-1, 2}));
  EXPECT_EQ(signature->outputs[0].type, DataType::kInt64);
  config.mutable_output(0)->set_data_type(config::TYPE_INVALID);
  EXPECT_NE(SignatureFromConfig(config).status().message().find("tensor 'y' needs a data_type"), std::string_view::npos);
  config.clear_output();
  EXPECT_FALSE(SignatureFromConfig(config).ok());
}

}  // namespace
}  // namespace ortserve::backend::remote
