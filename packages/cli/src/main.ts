console.log("ferry")
