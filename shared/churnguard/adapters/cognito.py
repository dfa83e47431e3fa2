"""People's sign-in to the console: a Cognito user pool, through its own API (no hosted pages).

The console posts the name and password it was given to ``InitiateAuth`` (USER_PASSWORD_AUTH, an app
client without a secret) and keeps only the access token, in an HttpOnly cookie; every request
asks Cognito whose token it is (``GetUser``), so an expired or signed-out token stops working.
A user an administrator created must choose a password at first sign-in (NEW_PASSWORD_REQUIRED).

    sign_in = CognitoSignIn("client-id", boto3.client("cognito-idp"))
    answer = sign_in.sign_in("ana", "s3cret-Passw0rd")   # {"access_token", "expires_in"} or {"challenge", "session"}
    sign_in.user_of(answer["access_token"])              # "ana", or None for a bad or expired token
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.errors import SignInRefusedError, StorageError

REFUSED = ("NotAuthorizedException", "UserNotFoundException")
NEW_PASSWORD = "NEW_PASSWORD_REQUIRED"


class CognitoSignIn:
    def __init__(self, client_id: str, cognito_client: Any) -> None:
        self.client_id = client_id
        self.cognito = cognito_client

    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        return self._auth(
            "wrong user name or password",
            self.cognito.initiate_auth,
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )

    def set_new_password(self, username: str, session: str, new_password: str) -> dict[str, Any]:
        return self._auth(
            "the sign-in expired: sign in again",
            self.cognito.respond_to_auth_challenge,
            ClientId=self.client_id,
            ChallengeName=NEW_PASSWORD,
            Session=session,
            ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password},
        )

    def _auth(self, refused: str, call: Any, **kwargs: Any) -> dict[str, Any]:
        """One sign-in step: tokens, or the next challenge; Cognito's refusal as SignInRefusedError."""
        try:
            out = call(**kwargs)
        except ClientError as e:
            raise self._refusal(e, refused) from e
        except BotoCoreError as e:
            raise StorageError(f"the sign-in service cannot be reached: {e}") from e
        if out.get("ChallengeName"):
            return {"challenge": out["ChallengeName"], "session": out.get("Session")}
        result = out["AuthenticationResult"]
        return {"access_token": result["AccessToken"], "expires_in": int(result.get("ExpiresIn", 3600))}

    def user_of(self, access_token: str) -> str | None:
        """The user name the token belongs to, or None when Cognito does not accept it."""
        try:
            return str(self.cognito.get_user(AccessToken=access_token)["Username"])
        except ClientError as e:
            if error_code(e) in REFUSED:
                return None
            raise StorageError(f"the sign-in service failed: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"the sign-in service cannot be reached: {e}") from e

    @staticmethod
    def _refusal(e: ClientError, refused: str) -> Exception:
        code = error_code(e)
        if code in REFUSED:
            return SignInRefusedError(refused)
        if code in ("InvalidPasswordException", "InvalidParameterException"):
            return SignInRefusedError(e.response.get("Error", {}).get("Message") or "the password was refused")
        if code == "PasswordResetRequiredException":
            return SignInRefusedError("your password must be reset: ask an administrator of the user pool")
        return StorageError(f"the sign-in service failed: {e}")
