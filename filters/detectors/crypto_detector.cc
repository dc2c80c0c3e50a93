// Bitcoin addresses: Base58Check P2PKH/P2SH ('1…', '3…', double-SHA256 checksum verified) and
// bech32/bech32m segwit addresses ("bc1…", checksum verified). A wallet address identifies its owner's
// payments; random base58-looking ids fail the checksum.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

class CryptoDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "crypto"; }
    // Base58 and bech32 addresses of 26+ characters that contain only hex letters are astronomically rare;
    // requiring a non-hex letter keeps SHA-256 hex strings out of the scan.
    DetectorGate gate() const override { return DetectorGate::when(kGateAlnumRun26 | kHasNonHexLetter); }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        const size_t n = text.size();
        for (size_t i = 0; i < n;) {
            if (!is_ascii_alnum(text[i])) {
                ++i;
                continue;
            }
            size_t end = i;
            while (end < n && is_ascii_alnum(text[end])) ++end;
            bool bounded = (i == 0 || !is_word_byte(text[i - 1])) && (end == n || !is_word_byte(text[end]));
            std::string_view token = text.substr(i, end - i);
            if (bounded && token.size() >= 26 && token.size() <= 90) {
                bool hit = false;
                if ((token[0] == '1' || token[0] == '3') && token.size() <= 35)
                    hit = base58check_address_valid(token);
                else if (token.size() >= 14 && (token.substr(0, 3) == "bc1" || token.substr(0, 3) == "BC1"))
                    hit = bech32_address_valid(token);
                if (hit) out.push_back({i, end, id()});
            }
            i = end;
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_crypto_detector() {
    return std::make_unique<CryptoDetector>();
}

}  // namespace edgeguard::privacy
