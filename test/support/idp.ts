import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";

/**
 * A small identity provider on loopback: an RS256 key pair, its JWKS and an
 * OpenID discovery document, and a signer for ID tokens. Airlock verifies
 * its tokens exactly as it would a real IdP's.
 */
export class TestIdp {
  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    private readonly privateKey: CryptoKey,
  ) {}

  static async start(): Promise<TestIdp> {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "test-key", alg: "RS256", use: "sig" };
    let issuer = "";
    const server = createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      if (req.url === "/.well-known/openid-configuration") {
        res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      } else if (req.url === "/jwks") {
        res.end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.statusCode = 404;
        res.end("{}");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return new TestIdp(server, issuer, privateKey);
  }

  /** An ID token for `claims`; options forge the ways a token can be wrong. */
  async sign(
    claims: JWTPayload & {
      email?: string;
      email_verified?: boolean;
      groups?: string[];
      name?: string;
    },
    options: {
      audience?: string;
      issuer?: string;
      expiresIn?: string | number;
      key?: CryptoKey;
    } = {},
  ): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "test-key" })
      .setIssuer(options.issuer ?? this.issuer)
      .setAudience(options.audience ?? "airlock")
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? "5m")
      .sign(options.key ?? this.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
